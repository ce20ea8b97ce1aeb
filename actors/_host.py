"""A host: runs many objects of one namespace shard, one event at a time per object.

Life of an event inside a host, in order, and the module that does each step:

1. **Intake** (:mod:`actors._intake`). Events arrive with ``(caller, seq)``; a caller's events
   are released in ``seq`` order, whatever order the transport delivered them in.
2. **Mailbox** (:mod:`actors._mailbox`). The event joins its object's mailbox. A full
   mailbox refuses it at once, and an event still waiting after ``queue_wait_seconds`` is
   dropped (both :class:`Overloaded`). An event of the call chain the object is already
   running (A calls B, B calls A) is let in at once instead of queueing behind its caller.
3. **Activation** (here). The first event for an id constructs the object ``cls(ctx, env)``;
   its life (:class:`actors._slot.ObjectLife`) goes inactive, activating, active.
4. **Turn** (here, with :mod:`actors._dispatch` for the handler of each event kind). The
   handler runs to completion; then the event's writes commit through the output gate
   (:mod:`actors._gate`), and only then does its reply leave. An exception rolls back what was
   not committed and drops the instance, so memory is never ahead of disk.
5. **Eviction** (:mod:`actors._live`). Objects idle for ``idle_timeout_s``, or beyond
   ``max_live_objects`` (least recently used first), lose their instance and their SQLite
   connection; their next event constructs them again.

Every task the host starts has an owner: the host holds its turns and mailbox drains, the live
table its sweeper, the alarms their timer, each object's WAL sync its sync. :meth:`Host.close`
waits for all of them, and answers every event still waiting with :class:`HostUnavailable`.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import time
from collections.abc import Coroutine
from enum import Enum
from typing import Any

from raydo.storage import StorageCore, StorageFull, layout, remove_partial_files
from raydo.storage.limits import LimitExceeded
from raydo.storage.replication import Replication, ShippingFailed

from . import _tracing
from ._alarm_runs import HostAlarms
from ._dispatch import Dispatcher
from ._durability import WalSync, sync_wal
from ._errors import (
    CallRefused,
    HostUnavailable,
    ObjectError,
    ObjectReset,
    RaydoError,
    RemoteLimitExceeded,
    RemoteStorageFull,
)
from ._failures import log_event_failure
from ._gate import OutputGate
from ._ids import IdScheme, ObjectId
from ._input_gate import TurnSteps, concurrency_of
from ._intake import Intake
from ._limits import EventLimits, EventStopped, RunningTurn, TurnMeter, now
from ._live import LiveObjects
from ._loading import load_class
from ._mailbox import Mailbox
from ._metrics import HostMetrics
from ._object import Aborted, DurableObject, PlatformObject
from ._slot import ObjectLife, ObjectSlot
from ._socket_index import SocketIndex
from ._spec import BindingSpec, HostKey, RuntimeSpec
from ._turn import Turn, current_turn
from ._watchdog import Watchdog
from .types import Event, EventKind
from .websockets import HostSockets

log = logging.getLogger("raydo.host")

_STRICT_HINT = (
    '; the object runs one event at a time (concurrency = "strict"), so an event that waits'
    " for a later event of its own object (a long poll) holds it until event_seconds:"
    ' concurrency = "gates" lets other events in while one awaits'
)

#: The "limit" of an event stopped because another event of its object reset the object.
RESET_BY_ANOTHER = "reset"


class HostState(Enum):
    """A host's life: it serves until :meth:`Host.close` starts, and is closed once it ends."""

    SERVING = "serving"
    CLOSING = "closing"
    CLOSED = "closed"


class Host:
    """Hosts the objects of one shard of one binding (or one dedicated object).

    ``deliver(event)`` returns a future of the reply payload; errors are
    :class:`RaydoError` subclasses. ``env`` is what objects receive as ``self.env``.
    ``may_end_process`` lets the watchdog end the process as its last resort against an
    event it cannot stop (on Ray, which restarts the host; never in process).
    """

    def __init__(
        self, spec: RuntimeSpec, key: HostKey, env: Any, *, may_end_process: bool = False
    ) -> None:
        self.spec = spec
        self.key = key
        self.binding: BindingSpec = spec.binding(key.binding)
        self.ids: IdScheme = spec.id_scheme(self.binding)
        self.env = env
        self.cls = load_class(spec.app_root, self.binding.class_name)
        self._platform = issubclass(self.cls, PlatformObject)
        if self._platform and not self.binding.internal:
            raise TypeError(
                f"{self.binding.class_name} is a PlatformObject: only raydo's internal"
                " bindings host those; subclass DurableObject instead"
            )
        self.gated = concurrency_of(self.binding.concurrency, self.cls) == "gates"
        """``concurrency = "gates"``: the objects' events interleave at their awaits."""
        self.state = HostState.SERVING
        self._closed = asyncio.Event()
        self._tasks: set[asyncio.Future[None]] = set()
        self._traced = _tracing.enabled()
        self.metrics = HostMetrics()
        self.intake = Intake(self._admit)
        self.objects = LiveObjects(self.binding, self.metrics)
        self.sockets = HostSockets(
            self.binding.name,
            spec.limits,
            self.deliver_local,
            _new_own_chain,
            index=SocketIndex(
                layout.socket_index_file(spec.storage_root, self.binding.name),
                full_sync=spec.durability == "full",
            ),
            host=key.label,
        )
        """The WebSockets of this host's objects: the transports attach gateways to it."""
        self.alarms = HostAlarms(
            layout.alarm_index_file(spec.storage_root, self.binding.name),
            key.label,
            self._own_event,
            self._admit,
            self.metrics,
        )
        self.gate = OutputGate(self.alarms)
        self.replication = None if spec.replication is None else Replication(spec.replication)
        """The store every object's log ships to, when the app replicates its storage."""
        self.meter = TurnMeter()
        self.watchdog = Watchdog(
            self.meter,
            EventLimits.of(self.binding),
            self.metrics,
            key.label,
            may_end_process=may_end_process,
        )
        self.dispatch = Dispatcher(
            self.cls, spec, self._activate, self.alarms, self.sockets, self.metrics
        )

    def start(self) -> None:
        """Remove the half-made files a dead predecessor left for this host's objects, arm
        every alarm the index holds for this host, give the gateways of every socket its
        objects had time to connect, and start the watchdog (call once, inside the event
        loop)."""
        removed = remove_partial_files(self.spec.storage_root, self.binding.name, self._owns)
        if removed:
            log.warning("%s: removed %d half-made object file(s)", self.key.label, removed)
        self.alarms.start()
        self.sockets.start()
        self.watchdog.start()

    def _owns(self, object_hex: str) -> bool:
        return (
            self.ids.owns(object_hex) and self.spec.host_for(self.binding, object_hex) == self.key
        )

    @property
    def stats(self) -> dict[str, int]:
        """The host's counters by name (see :class:`HostMetrics`)."""
        self.metrics.ws_sends = self.sockets.sends  # counted where the pushes go
        return self.metrics.stats()

    # ---- intake -------------------------------------------------------------------------

    def deliver(self, event: Event) -> asyncio.Future[Any]:
        """Accept one event; the future resolves with its reply payload or a RaydoError."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.state is not HostState.SERVING:
            future.set_exception(HostUnavailable("the host is shutting down", retryable=True))
            return future
        self.intake.accept(event, future)
        return future

    def forget_caller(self, caller: str) -> None:
        """A caller's connection closed: forget its order state and fail its held events."""
        self.intake.forget(caller)

    def deliver_local(self, event: Event) -> asyncio.Future[Any]:
        """Queue an event this host makes itself (no caller order to keep)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_log_failure)
        self._admit(event, future)
        return future

    # ---- the mailbox --------------------------------------------------------------------

    def _admit(self, event: Event, future: asyncio.Future[Any]) -> None:
        if self._traced:
            _tracing.event_admitted(self.key.label, event, future)
        if self.state is not HostState.SERVING:
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
        if self.gated and slot.drain is None and not slot.gate.held and self._room(slot):
            # Gates mode: the event starts now, beside the object's running ones.
            self._spawn(self._run_beside(slot, event, future))
            return
        if not slot.queue.admit(event, future):
            return
        if slot.drain is None:
            slot.drain = self._spawn(self._drain(slot))

    def _room(self, slot: ObjectSlot) -> bool:
        """Gates mode: may one more of the object's events run now (``mailbox_limit`` bounds
        the running ones too)?"""
        return slot.started < self.binding.mailbox_limit

    def _count_overload(self) -> None:
        self.metrics.overloads += 1

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        # The host owns every task it starts (close() waits for them); the loop itself keeps
        # only weak references.
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _slot(self, event: Event) -> ObjectSlot:
        hex_id = event.object_hex
        slot = self.objects.touch(hex_id)
        if slot is not None:
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
        path = layout.object_file(self.spec.storage_root, self.binding.name, hex_id)
        group_commit = self.spec.durability == "full"
        core = functools.partial(
            StorageCore,
            path,
            durability=self.spec.durability,
            limits=self.spec.limits,
            sync_later=group_commit,
            alarm_handler=self.dispatch.has_alarm_handler,
            in_turn=0,  # writes only inside events (see StorageCore)
            replicated=self.replication is not None,
        )
        wal_sync = WalSync(functools.partial(sync_wal, path)) if group_commit else None
        mailbox = Mailbox(
            f"{hex_id[:16]}…",
            self.binding.mailbox_limit,
            self.binding.queue_wait_seconds,
            self._count_overload,
            "" if self.gated else _STRICT_HINT,
        )
        replica = None
        if self.replication is not None:
            replica = self.replication.replica(self.binding.name, hex_id, path)
        slot = ObjectSlot(
            ObjectId(hex_id, self.binding.name, name),
            core,
            self.gate,
            self.sockets.object_sockets,
            mailbox,
            wal_sync,
            replica,
        )
        if replica is not None:
            replica.attach(slot.core, functools.partial(self._lost, hex_id))
            slot.core.point_in_time = replica
        self.objects.add(slot)
        return slot

    # ---- turns --------------------------------------------------------------------------

    async def _drain(self, slot: ObjectSlot) -> None:
        try:
            # A closing host leaves what is still queued to close(), which answers it.
            while slot.queue and self.state is HostState.SERVING:
                if self.gated:
                    # Start each event once no critical section holds the object back and
                    # there is room; it runs beside the others.
                    if slot.gate.held or not self._room(slot):
                        await slot.gate.changed()
                        continue
                    event, future = slot.queue.popleft()
                    self._spawn(self._run_beside(slot, event, future))
                    continue
                event, future = slot.queue.popleft()
                await self._run(slot, event, future)
        finally:
            slot.drain = None
            slot.last_used = time.monotonic()
            if slot.evict_requested and self.state is HostState.SERVING:
                self.objects.evict(slot.object_id.hex)

    async def _run(self, slot: ObjectSlot, event: Event, future: asyncio.Future[Any]) -> None:
        metrics = self.metrics
        started = time.perf_counter()
        try:
            handler = self.dispatch.handler(event)
        except CallRefused as exc:
            _settle(future, exc)
            metrics.event_done(event.kind, time.perf_counter() - started, True)
            return
        except Exception as exc:  # noqa: BLE001 - a malformed event must not stall the queue
            log_event_failure(slot.object_id, event, exc)
            _settle(future, CallRefused(f"malformed event: {exc!r}"))
            metrics.event_done(event.kind, time.perf_counter() - started, True)
            return
        replica = slot.replica
        if (
            replica is not None
            and not slot.turns
            and (
                replica.lost
                or not replica.ready
                # restored to a bookmark: its next session starts from that state
                or (replica.rewound and slot.life is not ObjectLife.ACTIVE)
            )
        ):
            try:
                await self._take_over(slot)
            except Exception as exc:  # noqa: BLE001 - the caller learns why, the host goes on
                log.error("%s: cannot restore from the store: %s", slot.object_id, exc)
                _settle(
                    future,
                    HostUnavailable(
                        f"the object's storage could not be restored from the replication"
                        f" store: {exc}",
                        retryable=True,
                    ),
                )
                metrics.event_done(event.kind, time.perf_counter() - started, True)
                return
        if self._traced:
            handler = _tracing.handler_span(handler, event, self.cls.__name__)
        if slot.ctx._reset_requested and not slot.turns:
            self._reset(slot)  # its unconfirmed writes were lost since its last event
        failed = True
        core = slot.core
        turn = Turn(event.chain, core, core.commit, object_id=slot.object_id)
        if event.streams is not None:  # its reply may stream: the head leaves before the end
            turn.answer = functools.partial(_answer_now, future)
        if self.gated and event.kind is EventKind.WS_MESSAGE:
            # The gateway hands a socket's messages over one at a time, each once the last
            # is answered: in gates mode it is answered as it starts, so the next can run
            # while this one awaits (a failure is still logged and resets as it would).
            _answer_now(future, None)
        token = current_turn.set(turn)
        slot.turns.append(turn)
        core.in_turn += 1
        steps: TurnSteps | None = None
        try:
            running = RunningTurn(slot.object_id, event, core, started)
            if self.gated:
                steps = TurnSteps(
                    slot.gate, core, lambda: slot.sockets.pending, slot.ctx._request_reset
                )
                turn.stop = functools.partial(self._stop_reset, running)
            reply = await self.meter.run(handler(slot, event), running, steps)
            if slot.ctx._reset_requested:  # a critical section failed, even if it was caught
                raise Aborted("block_concurrency_while() raised", retry_alarm=True)
            try:
                durable = core.commit()
            except BaseException:
                slot.ctx._request_reset()  # a commit that fails resets the object (gates too)
                raise
        except BaseException as exc:
            cause = exc.cause if isinstance(exc, _ConstructorFailed) else exc
            expected = isinstance(exc, (Aborted, EventStopped))
            if not self.gated:
                self._reset(slot)
            elif isinstance(exc, EventStopped) and exc.limit == RESET_BY_ANOTHER:
                pass  # the event that reset the object did it all
            elif expected or isinstance(exc, _ConstructorFailed) or slot.ctx._reset_requested:
                self._reset(slot)
                self._stop_others(slot, turn, exc)
            else:
                # Gates mode keeps the instance, as Cloudflare does: only what the failing
                # step wrote (all that is uncommitted) is rolled back.
                self._roll_back_step(slot)
            log_event_failure(slot.object_id, event, cause, expected=expected)
            if expected and not (isinstance(exc, EventStopped) and exc.limit == RESET_BY_ANOTHER):
                self.sockets.close_all(
                    slot.object_id,
                    slot.sockets,
                    1011,
                    "the object was reset",
                    slot.core.commit,
                    slot.core.rollback,
                )
            _settle(future, _as_caller_error(exc, turn.left))
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
            core.in_turn -= 1
            slot.turns.remove(turn)
            current_turn.reset(token)
            slot.last_used = time.monotonic()
            metrics.event_done(event.kind, time.perf_counter() - started, failed)
            if steps is not None:
                steps.release()

    def _run_beside(
        self, slot: ObjectSlot, event: Event, future: asyncio.Future[Any]
    ) -> Coroutine[Any, Any, None]:
        """Gates mode: run the event beside the object's others (counted from now on, so
        the object is not idle before it starts)."""
        slot.started += 1
        return self._ran_beside(slot, event, future)

    async def _ran_beside(
        self, slot: ObjectSlot, event: Event, future: asyncio.Future[Any]
    ) -> None:
        try:
            await self._run(slot, event, future)
        finally:
            slot.started -= 1
            slot.gate.wake()  # a drain waiting for room
            if (
                slot.evict_requested
                and not slot.started
                and slot.drain is None
                and self.state is HostState.SERVING
            ):
                self.objects.evict(slot.object_id.hex)

    def _stop_reset(self, running: RunningTurn, message: str) -> None:
        self.meter.stop_waiting(running, RESET_BY_ANOTHER, message, now())

    def _stop_others(self, slot: ObjectSlot, turn: Turn, exc: BaseException) -> None:
        """Gates mode: the object was reset; its other running events end with
        :class:`ObjectReset` too (they ran on the instance that is gone)."""
        why = exc.reason if isinstance(exc, Aborted) else str(exc)
        for other in list(slot.turns):
            if other is not turn and other.stop is not None:
                other.stop(f"the object was reset by another of its events: {why}")

    def _roll_back_step(self, slot: ObjectSlot) -> None:
        try:
            slot.sockets.discard()
            slot.core.rollback()
        except Exception:  # a failing rollback must not hide the event's own error
            log.exception("rollback failed for %s", slot.object_id)
            self._reset(slot)

    def _reset(self, slot: ObjectSlot) -> None:
        self.metrics.resets += 1
        slot.ctx._reset_requested = False
        try:
            slot.reset()
        except Exception:  # a failing rollback must not hide the event's own error
            log.exception("rollback failed for %s", slot.object_id)
            slot.core.close()
            slot.instance = None

    # ---- replication ------------------------------------------------------------------

    async def _take_over(self, slot: ObjectSlot) -> None:
        """Before an object's first event here (or its first after a loss): drop what a lost
        replica left, then make the local file the store's latest and take the log."""
        replica = slot.replica
        assert replica is not None
        if replica.lost:
            self._discard(slot)
        slot.core.close()  # the restore may replace the file under it
        await replica.take_over()

    def _lost(self, hex_id: str, why: str) -> None:
        """A replica can no longer ship: drop the object now if it is idle, else when its
        running turns end (its commits fail meanwhile, so nothing more is acknowledged)."""
        slot = self.objects.touch(hex_id)
        if slot is not None and slot.idle and slot.drain is None:
            self._discard(slot)

    def _discard(self, slot: ObjectSlot) -> None:
        """Reset the object and delete its local file: it never runs ahead of the store."""
        self._reset(slot)
        slot.core.close()
        if slot.replica is not None:
            slot.replica.discard_local()

    def _activate(self, slot: ObjectSlot) -> DurableObject:
        """The object's instance, constructed now unless it is active."""
        if slot.life is ObjectLife.ACTIVE:
            return slot.instance  # type: ignore[return-value]
        slot.activating()
        try:
            if self._platform:
                instance = self.cls(slot.ctx, self.env, slot.core)  # type: ignore[call-arg]
            else:
                instance = self.cls(slot.ctx, self.env)
        except Exception as exc:
            slot.activated(None)
            raise _ConstructorFailed(exc) from exc
        ctx = getattr(instance, "ctx", None)
        # A face over the context (the ``workers`` SDK's) names the context it wraps.
        if getattr(ctx, "__raydo_context__", ctx) is not slot.ctx:
            slot.activated(None)
            raise TypeError(
                f"{self.cls.__name__}.__init__ did not set self.ctx:"
                " did you forget to call super().__init__(ctx, env)?"
            )
        slot.activated(instance)
        self.metrics.activations += 1
        return instance

    def _own_event(
        self, object_hex: str, name: str | None, kind: EventKind, payload: list[Any]
    ) -> Event:
        return Event(self.binding.name, object_hex, name, _new_own_chain(), kind, payload)

    # ---- the live objects ---------------------------------------------------------------

    def evict(self, hex_id: str) -> bool:
        """Evict one object now if it is idle; True when it was evicted."""
        return self.objects.evict(hex_id)

    def evict_idle(self, now: float | None = None) -> int:
        """Evict every object idle for ``idle_timeout_s``; how many went."""
        return self.objects.evict_idle(now)

    def reload_code(self) -> int:
        """Take the object class again from the app's modules (``raydo dev`` imports the
        edited files: see :func:`actors.forget_app_modules`) and deactivate every object, so
        its next event constructs it from the new class; how many objects were live.

        An idle object is evicted now; a busy one once its mailbox is empty (its running
        turn ends on the old code). Evicting keeps sockets open (they hibernate), and every
        object's data stays in its file.
        """
        cls = load_class(self.spec.app_root, self.binding.class_name)
        if issubclass(cls, PlatformObject) is not self._platform:
            raise TypeError(f"{self.binding.class_name} changed kind: restart to reload it")
        if (concurrency_of(self.binding.concurrency, cls) == "gates") is not self.gated:
            raise TypeError(
                f"{self.binding.class_name} changed its concurrency mode: restart to take it"
            )
        self.cls = cls
        self.dispatch = Dispatcher(
            cls, self.spec, self._activate, self.alarms, self.sockets, self.metrics
        )
        live = 0
        for slot in self.objects:
            live += 1
            if not self.objects.evict(slot.object_id.hex):
                slot.evict_requested = True  # once its running events are done
        return live

    def wait_for_closes(self) -> None:
        """Block until every evicted object's file is closed (tests, shutdown)."""
        self.objects.wait_for_closes()

    @property
    def live_objects(self) -> int:
        return len(self.objects)

    def live_ids(self) -> list[str]:
        return self.objects.ids()

    def metrics_snapshot(self) -> dict[str, Any]:
        """This host's counters and gauges as plain data (see :mod:`actors._metrics`)."""
        self.metrics.ws_sends = self.sockets.sends
        depths = [len(slot.queue) for slot in self.objects]
        return {
            "binding": self.binding.name,
            "host": self.key.label,
            "live_objects": len(self.objects),
            "mailbox_depth": sum(depths),
            "mailbox_depth_max": max(depths, default=0),
            **self.metrics.snapshot(),
            **({} if self.replication is None else {"replication": self.replication.snapshot()}),
        }

    # ---- teardown -----------------------------------------------------------------------

    async def close(self) -> None:
        """Stop, and return once nothing of the host runs. In order: refuse new events; stop
        the alarm timer, the gateway links and the sweeper; cancel the running turns and
        mailbox drains and wait for them (a cancelled turn unwinds with its storage open and
        rolls back; its caller gets :class:`HostUnavailable`); cancel the objects'
        ``wait_until`` work; wait for running WAL syncs (their held replies leave); answer
        every event still queued or held with :class:`HostUnavailable`; close every file; stop
        and join the watchdog."""
        if self.state is not HostState.SERVING:
            await self._closed.wait()  # another close() is under way: its end is ours
            return
        self.state = HostState.CLOSING
        try:
            await self.alarms.stop()
            self.sockets.stop()
            await self.objects.stop_sweeping()
            while self._tasks:
                tasks = list(self._tasks)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for slot in self.objects:
                await slot.ctx._stop_background()
            await self.objects.settle_syncs()
            if self.replication is not None:
                await self.replication.settle()
            self.intake.close()
            unavailable = HostUnavailable("the host shut down", retryable=True)
            for slot in self.objects:
                for _, future in slot.queue.close():
                    _settle(future, unavailable)
            self.objects.close()
            self.alarms.close()
            if self.replication is not None:
                self.replication.close()
        finally:
            self.watchdog.close()
            self.state = HostState.CLOSED
            self._closed.set()


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


def _answer_now(future: asyncio.Future[Any], reply: Any) -> None:
    if not future.done():
        future.set_result(reply)


def _reply_when_durable(
    future: asyncio.Future[Any], reply: Any, durable: asyncio.Future[None]
) -> None:
    if future.done():
        return
    if not durable.cancelled() and isinstance(durable.exception(), ShippingFailed):
        future.set_exception(HostUnavailable(str(durable.exception()), retryable=False))
        return
    if durable.cancelled() or durable.exception() is not None:
        why = "cancelled" if durable.cancelled() else repr(durable.exception())
        future.set_exception(
            HostUnavailable(f"the event's writes could not be made durable: {why}", retryable=False)
        )
        return
    future.set_result(reply)


def _as_caller_error(exc: BaseException, left: bool) -> RaydoError:
    """What the caller of a failed event gets (``left``: something of it left the object)."""
    if isinstance(exc, Aborted):
        reset = ObjectReset(f"the object was reset: {exc.reason}")
        reset.retry_alarm = exc.retry_alarm
        return reset
    if isinstance(exc, EventStopped):
        limit = None if exc.limit == RESET_BY_ANOTHER else exc.limit or None
        return ObjectReset(f"the object was reset: {exc}", limit=limit)
    if isinstance(exc, _ConstructorFailed):
        cause = exc.cause
        if isinstance(cause, StorageFull):
            return RemoteStorageFull(str(cause), retryable=not left)
        return ObjectError(type(cause).__name__, f"the constructor raised: {cause}")
    if isinstance(exc, LimitExceeded):
        return RemoteLimitExceeded(exc.limit, str(exc))
    if isinstance(exc, StorageFull):
        return RemoteStorageFull(str(exc), retryable=not left)
    if isinstance(exc, asyncio.CancelledError):
        return HostUnavailable("the event was cancelled", retryable=False)
    return ObjectError(type(exc).__name__, str(exc))
