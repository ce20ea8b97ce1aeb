"""A host: runs many objects of one namespace shard, one event at a time per object.

Life of an event inside a host, in order:

1. **Intake.** Events arrive with ``(caller, seq)``; a caller's events are released in
   ``seq`` order, whatever order the transport delivered them in.
2. **Mailbox.** The event joins its object's mailbox. A full mailbox refuses it at once
   (:class:`Overloaded`). An event of the call chain the object is already running (A calls
   B, B calls A) is let in at once instead of queueing behind its own caller.
3. **Activation.** The first event for an id constructs the object ``cls(ctx, env)``.
4. **Turn.** The handler runs to completion; then the event's writes commit (the output
   gate), and only then does its reply leave. An exception rolls back what was not
   committed and drops the instance, so memory is never ahead of disk.
5. **Eviction.** Objects idle for ``idle_timeout_s``, or beyond ``max_live_objects`` (least
   recently used first), lose their instance and their SQLite connection; their next event
   constructs them again.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from raydo.storage import ObjectStorage, codec
from raydo.storage.limits import LimitExceeded

from . import _tracing
from ._alarms import MAX_RETRIES, AlarmIndex, AlarmInfo, AlarmTimer, backoff_s, now_ms
from ._durability import WalSync, sync_wal
from ._errors import (
    CallRefused,
    HostUnavailable,
    ObjectError,
    ObjectReset,
    Overloaded,
    RaydoError,
    RemoteLimitExceeded,
)
from ._http import payload_request, response_payload
from ._ids import IdScheme, ObjectId
from ._loading import MissingAttribute, import_from_app
from ._metrics import HostMetrics
from ._object import RESERVED_NAMES, Aborted, DurableObject
from ._slot import ObjectSlot, SlotState
from ._spec import BindingSpec, HostKey, RuntimeSpec
from ._turn import Turn, current_turn
from .types import Event, EventKind
from .websockets import UPGRADE_SCOPE_KEY, GatewayLinks, ObjectSockets, WebSocket

log = logging.getLogger("raydo.host")

_MAX_HELD_PER_CALLER = 100_000


class _CallerIntake:
    """Releases one caller's events in ``seq`` order."""

    __slots__ = ("expected", "held")

    def __init__(self) -> None:
        self.expected = 0
        self.held: dict[int, tuple[Event, asyncio.Future[Any]]] = {}


class Host:
    """Hosts the objects of one shard of one binding (or one dedicated object).

    ``deliver(event)`` returns a future of the reply payload; errors are
    :class:`RaydoError` subclasses. ``env`` is what objects receive as ``self.env``.
    """

    def __init__(self, spec: RuntimeSpec, key: HostKey, env: Any) -> None:
        self.spec = spec
        self.key = key
        self.binding: BindingSpec = spec.binding(key.binding)
        self.ids: IdScheme = spec.id_scheme(self.binding)
        self.env = env
        self.cls = load_class(spec.app_root, self.binding.class_name)
        self._storage_dir = Path(spec.storage_root) / self.binding.name
        self._slots: OrderedDict[str, ObjectSlot] = OrderedDict()
        self._callers: dict[str, _CallerIntake] = {}
        self._sweeper: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._closed = False
        # Closing a WAL file checkpoints it (~1 ms of I/O, the GIL released): evicting a
        # thousand objects inline would stall every other object of the host for a second.
        self._closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raydo-close")
        self.stats = {
            "events": 0,
            "activations": 0,
            "evictions": 0,
            "overloads": 0,
            "resets": 0,
            "alarms": 0,
            "alarm_retries": 0,
            "ws_sends": 0,
        }
        self.metrics = HostMetrics()
        self._traced = _tracing.enabled()
        self.gateways = GatewayLinks(self._socket_lost)
        self.alarm_index = AlarmIndex(self._storage_dir / "_alarms.sqlite")
        self.alarms = AlarmTimer(self.fire_alarm)
        self._has_alarm_handler = getattr(self.cls, "alarm", None) is not None

    def start(self) -> None:
        """Arm every alarm the index holds for this host (call once, inside the event loop)."""
        for object_hex, name, due in self.alarm_index.of_host(self.key.label):
            self.alarms.arm(object_hex, name, due)

    # ---- intake -------------------------------------------------------------------------

    def deliver(self, event: Event) -> asyncio.Future[Any]:
        """Accept one event; the future resolves with its reply payload or a RaydoError."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(HostUnavailable("the host is shutting down", retryable=True))
            return future
        intake = self._callers.get(event.caller)
        if intake is None:
            intake = self._callers[event.caller] = _CallerIntake()
        if event.seq == intake.expected:
            intake.expected += 1
            self._admit(event, future)
            while intake.held and intake.expected in intake.held:
                held_event, held_future = intake.held.pop(intake.expected)
                intake.expected += 1
                self._admit(held_event, held_future)
        elif (
            event.seq > intake.expected
            and event.seq not in intake.held  # a duplicate must not orphan the held event
            and len(intake.held) < _MAX_HELD_PER_CALLER
        ):
            intake.held[event.seq] = (event, future)
        else:
            future.set_exception(
                CallRefused(f"event {event.seq} from this caller is a duplicate or out of window")
            )
        return future

    def forget_caller(self, caller: str) -> None:
        """A caller's connection closed: forget its order state and fail its held events."""
        intake = self._callers.pop(caller, None)
        if intake:
            for _, future in intake.held.values():
                if not future.done():
                    future.set_exception(HostUnavailable("caller went away", retryable=False))

    def _admit(self, event: Event, future: asyncio.Future[Any]) -> None:
        if self._traced:
            _tracing.event_admitted(self.key.label, event, future)
        if self._closed:
            future.set_exception(HostUnavailable("the host is shutting down", retryable=True))
            return
        try:
            slot = self._slot(event)
        except RaydoError as exc:
            future.set_exception(exc)
            return
        if slot.waiting_on(event.chain):
            self._spawn(self._run(slot, event, future))
            return
        if len(slot.queue) >= self.binding.mailbox_limit:
            self.stats["overloads"] += 1
            future.set_exception(
                Overloaded(
                    f"object {slot.object_id.hex[:16]}… is overloaded: {len(slot.queue)} events"
                    f" queued (mailbox_limit {self.binding.mailbox_limit})"
                )
            )
            return
        slot.queue.append((event, future))
        if not slot.draining:
            slot.draining = True
            self._spawn(self._drain(slot))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # The loop keeps only weak references to tasks: hold each until it finishes.
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _slot(self, event: Event) -> ObjectSlot:
        hex_id = event.object_hex
        slot = self._slots.get(hex_id)
        if slot is not None:
            self._slots.move_to_end(hex_id)
            named = event.name is not None and slot.object_id.name is None
            if named and self.ids.name_matches(hex_id, event.name):  # type: ignore[arg-type]
                slot.object_id.name = event.name
            return slot
        if event.binding != self.binding.name or not self.ids.owns(hex_id):
            raise CallRefused(f"id {hex_id[:16]}… does not belong to namespace {self.binding.name}")
        if self.spec.host_for(self.binding, hex_id) != self.key:
            raise CallRefused(f"id {hex_id[:16]}… is not hosted by {self.key.label}")
        name = (
            event.name
            if event.name is not None and self.ids.name_matches(hex_id, event.name)
            else None
        )
        path = self._storage_dir / hex_id[:2] / f"{hex_id}.sqlite"
        group_commit = self.spec.durability == "full"
        storage = ObjectStorage(
            path, durability=self.spec.durability, limits=self.spec.limits, sync_later=group_commit
        )
        storage.in_turn = 0  # writes only inside events (see ObjectStorage.in_turn)
        storage.alarm_handler = self._has_alarm_handler
        sockets = ObjectSockets(storage, self.spec.limits, self.push)
        slot = ObjectSlot(ObjectId(hex_id, self.binding.name, name), storage, sockets)
        if group_commit:
            slot.wal_sync = WalSync(functools.partial(sync_wal, path))
        storage.before_commit = functools.partial(self._before_commit, slot)
        storage.after_commit = functools.partial(self._after_commit, slot)
        self._slots[hex_id] = slot
        self._enforce_live_bound(keep=hex_id)
        self._ensure_sweeper()
        return slot

    # ---- turns --------------------------------------------------------------------------

    async def _drain(self, slot: ObjectSlot) -> None:
        try:
            while slot.queue:
                event, future = slot.queue.popleft()
                await self._run(slot, event, future)
        finally:
            slot.draining = False
            slot.last_used = time.monotonic()
            if slot.evict_requested:
                self.evict(slot.object_id.hex)

    async def _run(self, slot: ObjectSlot, event: Event, future: asyncio.Future[Any]) -> None:
        self.stats["events"] += 1
        started = time.perf_counter()
        try:
            handler = self._handler(event)
        except CallRefused as exc:
            _settle(future, exc)
            self.metrics.event_done(event.kind, time.perf_counter() - started, True)
            return
        except Exception as exc:  # noqa: BLE001 - a malformed event must not stall the queue
            _settle(future, CallRefused(f"malformed event: {exc!r}"))
            self.metrics.event_done(event.kind, time.perf_counter() - started, True)
            return
        if self._traced:
            handler = _tracing.handler_span(handler, event, self.cls.__name__)
        failed = True
        commit = functools.partial(self._commit, slot)
        turn = Turn(event.chain, slot.storage, commit, object_id=slot.object_id)
        token = current_turn.set(turn)
        slot.turns.append(turn)
        slot.storage.in_turn += 1
        try:
            reply = await handler(slot, event)
            if slot.ctx.reset_requested:  # a critical section failed, even if it was caught
                raise Aborted("block_concurrency_while() raised", retry_alarm=True)
            durable = commit()
        except BaseException as exc:
            self._reset(slot)
            if isinstance(exc, Aborted):
                self._close_all_sockets(slot, 1011, "the object was reset")
            _settle(future, _as_caller_error(exc))
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            failed = False
            if durable is None:
                if not future.done():
                    future.set_result(reply)
            else:  # the reply leaves with the sync that makes the event's writes durable
                durable.add_done_callback(functools.partial(_reply_when_durable, future, reply))
        finally:
            turn.ended = True
            slot.storage.in_turn -= 1
            slot.turns.remove(turn)
            current_turn.reset(token)
            slot.last_used = time.monotonic()
            self.metrics.event_done(event.kind, time.perf_counter() - started, failed)

    def _reset(self, slot: ObjectSlot) -> None:
        self.stats["resets"] += 1
        slot.ctx.reset_requested = False
        try:
            slot.reset()
        except Exception:  # a failing rollback must not hide the event's own error
            log.exception("rollback failed for %s", slot.object_id)
            slot.storage.close()
            slot.instance = None

    def _close_all_sockets(self, slot: ObjectSlot, code: int, reason: str) -> None:
        try:
            for ws in slot.sockets.handles():
                slot.sockets.queue_close(ws.sid, code, reason)
            self._commit(slot)
        except Exception:
            log.exception("closing the sockets of %s failed", slot.object_id)
            slot.sockets.discard()
            slot.storage.rollback()

    def _commit(self, slot: ObjectSlot) -> asyncio.Future[None] | None:
        """Commit the event's writes so far; under group commit, the future of their
        durability (the output of the event waits for it)."""
        slot.durable = None
        slot.storage.commit()  # runs _before_commit and _after_commit below
        return slot.durable

    def _before_commit(self, slot: ObjectSlot) -> None:
        """An alarm the transaction set goes into the index first (written ahead); a name the
        object's file does not know yet is recorded (for inspection: ids are one-way)."""
        storage = slot.storage
        name = slot.object_id.name
        if name is not None and not slot.name_recorded:
            if storage.get_meta("name") != name:
                storage.set_meta("name", name)
            slot.name_recorded = True
        if storage.alarm_touched:
            due = storage.get_alarm()
            slot.committing_alarm = due
            if due is not None:
                object_id = slot.object_id
                self.alarm_index.ahead(self.key.label, object_id.hex, object_id.name, due)

    def _after_commit(self, slot: ObjectSlot) -> None:
        """The index and the timer learn the committed alarm; queued sends leave. Under group
        commit both wait for the sync that makes this commit durable."""
        storage = slot.storage
        alarm: tuple[int | None] | None = None
        if storage.alarm_touched:
            storage.alarm_touched = False
            alarm = (slot.committing_alarm,)
        durable = (
            None if slot.wal_sync is None else slot.wal_sync.committed(storage.last_commit_wrote)
        )
        if durable is None:
            self._committed(slot, alarm, slot.sockets.take_frames())
            return
        slot.durable = durable
        frames = slot.sockets.take_frames()

        def release(done: asyncio.Future[None]) -> None:
            if done.cancelled() or done.exception() is not None:
                log.error(
                    "the writes of %s did not become durable; its output is dropped", slot.object_id
                )
                return
            self._committed(slot, alarm, frames)

        durable.add_done_callback(release)

    def _committed(
        self, slot: ObjectSlot, alarm: tuple[int | None] | None, frames: list[Any]
    ) -> None:
        if alarm is not None:
            due, object_id = alarm[0], slot.object_id
            self.alarm_index.settle(self.key.label, object_id.hex, object_id.name, due)
            if due is None:
                self.alarms.disarm(object_id.hex)
            else:
                self.alarms.arm(object_id.hex, object_id.name, due)
        slot.sockets.push_frames(frames)

    def _handler(self, event: Event) -> Any:
        """Check the event before any user code runs; refusals reset nothing."""
        if event.kind == EventKind.RPC:
            if not isinstance(event.payload, list) or len(event.payload) != 2:
                raise CallRefused("malformed RPC event")
            name, packed = event.payload
            self._rpc_method(name)
            try:
                args, kwargs = codec.decode(packed)
                args, kwargs = list(args), dict(kwargs)
                if not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
                    raise TypeError("keyword argument names must be identifiers")
            except (codec.DecodeError, TypeError, ValueError) as exc:
                raise CallRefused(f"malformed RPC arguments: {exc}") from None
            return functools.partial(self._call_rpc, name, args, kwargs)
        if event.kind == EventKind.FETCH:
            if self.cls.fetch is DurableObject.fetch:
                raise CallRefused(f"{self.cls.__name__} has no fetch handler")
            if not isinstance(event.payload, list) or len(event.payload) not in (5, 6):
                raise CallRefused("malformed fetch event")
            return self._call_fetch
        if event.kind in (EventKind.WS_MESSAGE, EventKind.WS_CLOSE, EventKind.WS_ERROR):
            if not isinstance(event.payload, list) or not event.payload:
                raise CallRefused("malformed WebSocket event")
            return functools.partial(self._call_socket, event.kind)
        if event.kind == EventKind.ALARM:
            retries, mode = event.payload
            return functools.partial(self._call_alarm, int(retries), str(mode))
        if event.kind == EventKind.CONTROL:
            if not isinstance(event.payload, list) or not event.payload:
                raise CallRefused("malformed control event")
            operation, *arguments = event.payload
            if operation == "alarm":
                return functools.partial(self._call_alarm, 0, "now")
            if operation == "sql" and len(arguments) == 2:
                return functools.partial(self._call_sql, arguments[0], list(arguments[1]))
            if operation == "evict":
                return self._call_evict
            raise CallRefused(f"unknown control operation {operation!r}")
        raise CallRefused(f"unknown event kind {event.kind!r}")

    async def _call_alarm(self, retries: int, mode: str, slot: ObjectSlot, event: Event) -> bool:
        """Run the object's alarm if it is due (or at once for mode "now"); True if it ran."""
        storage = slot.storage
        due = storage.get_alarm()
        if due is None:
            self.alarm_index.settle(self.key.label, slot.object_id.hex, None, None)
            return False
        if mode == "drop" or not self._has_alarm_handler:
            storage.delete_alarm()
            return False
        if mode == "due" and due > now_ms():
            self.alarms.arm(slot.object_id.hex, slot.object_id.name, due, retries)
            return False
        instance = slot.instance or self._activate(slot)
        self.stats["alarms"] += 1
        # The alarm stays stored until the handler succeeds, so a failure (even after the
        # handler committed some writes) leaves it for the retry; it reads None meanwhile.
        storage.alarm_running, storage.alarm_replaced = True, False
        try:
            limit = self.spec.limits.alarm_seconds
            try:
                await asyncio.wait_for(instance.alarm(AlarmInfo(retries, due)), limit)  # type: ignore[attr-defined]
            except TimeoutError:
                raise TimeoutError(
                    f"alarm() ran longer than {limit} s and was cancelled (limit alarm_seconds)"
                ) from None
            replaced = storage.alarm_replaced
        finally:
            storage.alarm_running = storage.alarm_replaced = False
        if not replaced:
            storage.delete_alarm()
        return True

    async def _call_sql(
        self, query: str, params: list[Any], slot: ObjectSlot, event: Event
    ) -> bytes:
        cursor = slot.storage.sql.exec(query, *params)
        return codec.encode({"columns": cursor.column_names, "rows": cursor.fetchall()})

    async def _call_evict(self, slot: ObjectSlot, event: Event) -> bool:
        slot.evict_requested = True  # once this turn and the queue behind it are done
        return True

    def fire_alarm(
        self, object_hex: str, name: str | None, retries: int, mode: str = "due"
    ) -> None:
        """Queue an alarm event for an object (the timer calls this when one is due)."""
        event = Event(
            self.binding.name,
            object_hex,
            name,
            _new_own_chain(),
            EventKind.ALARM,
            [retries, mode],
        )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(functools.partial(self._alarm_done, object_hex, name, retries))
        self._admit(event, future)

    def _alarm_done(
        self, object_hex: str, name: str | None, retries: int, future: asyncio.Future[Any]
    ) -> None:
        error = future.exception() if not future.cancelled() else None
        if error is None or self._closed:
            return
        if isinstance(error, Overloaded):  # the alarm never ran: try again soon, uncounted
            self.alarms.arm(object_hex, name, now_ms() + 1000, retries)
            return
        aborted = isinstance(error, ObjectReset) and not getattr(error, "retry_alarm", True)
        log.warning("alarm of %s… failed (attempt %d): %s", object_hex[:16], retries + 1, error)
        if retries >= MAX_RETRIES or aborted:
            self.fire_alarm(object_hex, name, retries, "drop")
        else:
            self.stats["alarm_retries"] += 1
            due = now_ms() + int(backoff_s(retries + 1) * 1000)
            self.alarms.arm(object_hex, name, due, retries + 1)

    async def _call_rpc(
        self,
        method_name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        slot: ObjectSlot,
        event: Event,
    ) -> bytes:
        instance = slot.instance or self._activate(slot)
        result = await getattr(instance, method_name)(*args, **kwargs)
        try:
            data = codec.encode(result)
        except codec.EncodeError as exc:
            raise TypeError(
                f"{self.cls.__name__}.{method_name} returned an unencodable value: {exc}"
            ) from None
        self.spec.limits.check("message_bytes", len(data), "the RPC result")
        return data

    async def _call_fetch(self, slot: ObjectSlot, event: Event) -> list[Any]:
        instance = slot.instance or self._activate(slot)
        request = payload_request(event.payload[:5])
        upgrade = event.payload[5] if len(event.payload) == 6 else None
        if upgrade is not None:
            request.scope[UPGRADE_SCOPE_KEY] = (str(upgrade[0]), str(upgrade[1]))
        response = await instance.fetch(request)
        reply = await response_payload(response, self.spec.limits)
        if upgrade is not None and reply[0] != 101 and slot.sockets.record(str(upgrade[0])):
            slot.sockets.forget(str(upgrade[0]))  # accepted, then refused: nobody holds it
        if upgrade is not None and reply[0] == 101:
            sid, gateway = str(upgrade[0]), str(upgrade[1])
            if slot.sockets.record(sid) is None:
                raise TypeError("fetch answered 101 without ctx.accept_websocket(request)")
            self.gateways.holds(gateway, slot.object_id.hex, sid)
            reply.append(slot.sockets.auto_response)
        return reply

    async def _call_socket(self, kind: EventKind, slot: ObjectSlot, event: Event) -> None:
        sid = str(event.payload[0])
        record = slot.sockets.record(sid)
        if record is None:
            return  # closed already (by the object, or a duplicate close)
        instance = slot.instance or self._activate(slot)
        ws = WebSocket(slot.sockets, sid)
        if kind == EventKind.WS_CLOSE:
            # The socket is gone whatever the handler does: forget it for good first, then
            # let the handler see what it was (its tags and attachment).
            slot.sockets.forget(sid)
            self._commit(slot)
            self.gateways.released(record.gateway, slot.object_id.hex, sid)
            ws = WebSocket(slot.sockets, sid, closed=record)
        if kind == EventKind.WS_MESSAGE:
            handler = getattr(instance, "web_socket_message", None)
            if handler is not None:
                await handler(ws, event.payload[1])
        elif kind == EventKind.WS_CLOSE:
            _, code, reason, was_clean = event.payload
            handler = getattr(instance, "web_socket_close", None)
            if handler is not None:
                await handler(ws, int(code), str(reason), bool(was_clean))
        else:
            handler = getattr(instance, "web_socket_error", None)
            if handler is not None:
                await handler(ws, RuntimeError(str(event.payload[1])))

    # ---- gateways (where client sockets live) -------------------------------------------

    def attach_gateway(self, gateway: str, writer: Callable[[list[Any]], None]) -> None:
        """A gateway process connected: pushes for its sockets go to ``writer``."""
        self.gateways.attach(gateway, writer)

    def announce_sockets(self, gateway: str, sockets: list[list[str]]) -> None:
        """A (re)connected gateway says which sockets of this host's objects it holds."""
        self.gateways.announce(gateway, sockets)

    def detach_gateway(self, gateway: str, writer: Callable[[list[Any]], None]) -> None:
        """A gateway's connection closed (see :class:`GatewayLinks`)."""
        self.gateways.detach(gateway, writer)

    def push(self, gateway: str, frame: list[Any]) -> None:
        """Send a push frame to a gateway; held briefly while it reconnects."""
        if frame[0] == "send":
            self.stats["ws_sends"] += len(frame[1])
        self.gateways.push(gateway, frame)

    def _socket_lost(self, object_hex: str, sid: str) -> None:
        self.deliver_local(
            Event(
                self.binding.name,
                object_hex,
                None,
                _new_own_chain(),
                EventKind.WS_CLOSE,
                [sid, 1006, "the gateway holding this WebSocket went away", False],
            )
        )

    def deliver_local(self, event: Event) -> asyncio.Future[Any]:
        """Queue an event this host makes itself (no caller order to keep)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_log_failure)
        self._admit(event, future)
        return future

    def _rpc_method(self, name: object) -> Any:
        cls = self.cls
        if not isinstance(name, str) or not name.isidentifier():
            raise CallRefused(f"{name!r} is not a method name")
        if name.startswith("_"):
            raise CallRefused(f"{cls.__name__}.{name} is private: RPC reaches public methods only")
        if name in RESERVED_NAMES:
            raise CallRefused(f"{cls.__name__}.{name} is reserved and cannot be called over RPC")
        method = getattr(cls, name, None)
        if method is None:
            raise CallRefused(f"{cls.__name__} has no method {name!r}")
        if not inspect.iscoroutinefunction(method):
            raise CallRefused(
                f"{cls.__name__}.{name} is not an async method: RPC methods are `async def`"
            )
        return method

    def _activate(self, slot: ObjectSlot) -> DurableObject:
        try:
            instance = self.cls(slot.ctx, self.env)
        except Exception as exc:
            raise _ConstructorFailed(exc) from exc
        if getattr(instance, "ctx", None) is not slot.ctx:
            raise TypeError(
                f"{self.cls.__name__}.__init__ did not set self.ctx:"
                " did you forget to call super().__init__(ctx, env)?"
            )
        slot.instance = instance
        slot.state = slot.state.check(SlotState.ACTIVE)
        self.stats["activations"] += 1
        return instance

    # ---- eviction -----------------------------------------------------------------------

    def evict(self, hex_id: str) -> bool:
        """Evict one object now if it is idle; True when it was evicted."""
        slot = self._slots.get(hex_id)
        if slot is None or not slot.idle or slot.draining:
            return False
        del self._slots[hex_id]
        slot.evict(self._close_later)
        self.stats["evictions"] += 1
        return True

    def _close_later(self, conn: sqlite3.Connection) -> None:
        self._closer.submit(conn.close)

    def wait_for_closes(self) -> None:
        """Block until every evicted object's file is closed (tests, shutdown)."""
        self._closer.submit(lambda: None).result()

    def evict_idle(self, now: float | None = None) -> int:
        """Evict every object idle for ``idle_timeout_s``; how many went."""
        now = time.monotonic() if now is None else now
        horizon = now - self.binding.idle_timeout_s
        stale = [h for h, s in self._slots.items() if s.last_used <= horizon and s.idle]
        return sum(self.evict(h) for h in stale)

    def _enforce_live_bound(self, keep: str) -> None:
        excess = len(self._slots) - self.binding.max_live_objects
        if excess <= 0:
            return
        for hex_id in list(self._slots)[: excess * 2]:
            if excess <= 0:
                break
            # ``keep`` is the object an event is arriving for: evicting it would hand the
            # event a closed, detached slot.
            if hex_id != keep and self.evict(hex_id):
                excess -= 1

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        period = min(max(self.binding.idle_timeout_s / 4, 0.05), 5.0)
        while self._slots and not self._closed:
            await asyncio.sleep(period)
            self.evict_idle()

    @property
    def live_objects(self) -> int:
        return len(self._slots)

    def metrics_snapshot(self) -> dict[str, Any]:
        """This host's counters and gauges as plain data (see :mod:`actors._metrics`)."""
        depths = [len(slot.queue) for slot in self._slots.values()]
        return {
            "binding": self.binding.name,
            "host": self.key.label,
            "stats": dict(self.stats),
            "live_objects": len(self._slots),
            "mailbox_depth": sum(depths),
            "mailbox_depth_max": max(depths, default=0),
            **self.metrics.snapshot(),
        }

    def live_ids(self) -> list[str]:
        return list(self._slots)

    async def close(self) -> None:
        """Stop: fail queued events, close every object's storage."""
        self._closed = True
        self.alarms.stop()
        self.gateways.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()
        for caller in list(self._callers):
            self.forget_caller(caller)
        for slot in list(self._slots.values()):
            while slot.queue:
                _, future = slot.queue.popleft()
                _settle(future, HostUnavailable("the host shut down", retryable=True))
            slot.instance = None
            slot.storage.close()
        self._slots.clear()
        self._closer.shutdown(wait=True)
        self.alarm_index.close()


class _ConstructorFailed(Exception):
    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


_own_chains = itertools.count()
_own_chain_prefix = os.urandom(6).hex()


def _new_own_chain() -> str:
    """A chain id for an event the host makes itself (alarms, lost sockets): unique across
    processes, so it never passes for another host's chain."""
    return f"host-{_own_chain_prefix}-{next(_own_chains)}"


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("an event the host made itself failed: %s", future.exception())


def _settle(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _reply_when_durable(
    future: asyncio.Future[Any], reply: Any, durable: asyncio.Future[None]
) -> None:
    if future.done():
        return
    if durable.cancelled() or durable.exception() is not None:
        why = "cancelled" if durable.cancelled() else repr(durable.exception())
        future.set_exception(
            HostUnavailable(f"the event's writes could not be made durable: {why}", retryable=False)
        )
        return
    future.set_result(reply)


def _as_caller_error(exc: BaseException) -> RaydoError:
    if isinstance(exc, Aborted):
        reset = ObjectReset(f"the object was reset: {exc.reason}")
        reset.retry_alarm = exc.retry_alarm
        return reset
    if isinstance(exc, _ConstructorFailed):
        cause = exc.cause
        return ObjectError(type(cause).__name__, f"the constructor raised: {cause}")
    if isinstance(exc, LimitExceeded):
        return RemoteLimitExceeded(exc.limit, str(exc))
    if isinstance(exc, asyncio.CancelledError):
        return HostUnavailable("the event was cancelled", retryable=False)
    return ObjectError(type(exc).__name__, str(exc))


def load_class(app_root: str, class_name: str) -> type[DurableObject]:
    """Import ``module:Class`` from the app's folder."""
    try:
        cls = import_from_app(app_root, class_name)
    except MissingAttribute:
        cls = None
    if not isinstance(cls, type) or not issubclass(cls, DurableObject):
        raise TypeError(f"{class_name} is not a DurableObject subclass")
    return cls
