"""Dispatch: from an event's kind to the handler that runs it inside the object's turn.

:meth:`Dispatcher.handler` checks an event before any user code runs (a refusal resets
nothing) and answers the coroutine function the turn awaits, from one table by
:class:`EventKind`; control events (the testing and inspection hooks) have their own table of
three operations: ``alarm`` (run the alarm now), ``sql`` (one statement on the object's
storage) and ``evict`` (evict once idle). The WebSocket parts (an upgrade's ``fetch``, and the
socket events) are grouped at the end.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from raydo.storage import codec

from ._alarm_runs import HostAlarms
from ._alarms import AlarmInfo, now_ms
from ._errors import CallRefused
from ._http import payload_request, response_payload
from ._metrics import HostMetrics
from ._object import RESERVED_NAMES, DurableObject
from ._slot import ObjectSlot
from ._spec import RuntimeSpec
from .types import Event, EventKind
from .websockets import UPGRADE_SCOPE_KEY, GatewayLinks, WebSocket

Handler = Callable[[ObjectSlot, Event], Awaitable[Any]]
Activate = Callable[[ObjectSlot], DurableObject]
"""The object's instance, constructed first unless the object is active."""


class Dispatcher:
    """The handlers of one host's object class."""

    def __init__(
        self,
        cls: type[DurableObject],
        spec: RuntimeSpec,
        activate: Activate,
        alarms: HostAlarms,
        gateways: GatewayLinks,
        metrics: HostMetrics,
    ) -> None:
        self._cls = cls
        self._spec = spec
        self._activate = activate
        self._alarms = alarms
        self._gateways = gateways
        self._metrics = metrics
        self.has_alarm_handler = getattr(cls, "alarm", None) is not None
        self._checks: dict[int, Callable[[Event], Handler]] = {
            EventKind.RPC: self._check_rpc,
            EventKind.FETCH: self._check_fetch,
            EventKind.WS_MESSAGE: self._check_socket,
            EventKind.WS_CLOSE: self._check_socket,
            EventKind.WS_ERROR: self._check_socket,
            EventKind.ALARM: self._check_alarm,
            EventKind.CONTROL: self._check_control,
        }
        self._controls: dict[str, Callable[[list[Any]], Handler | None]] = {
            "alarm": lambda arguments: functools.partial(self._call_alarm, 0, "now"),
            "sql": self._control_sql,
            "evict": lambda arguments: self._call_evict,
        }

    def handler(self, event: Event) -> Handler:
        """The handler of ``event``, or :class:`CallRefused` (other errors: malformed)."""
        check = self._checks.get(event.kind) if isinstance(event.kind, int) else None
        if check is None:
            raise CallRefused(f"unknown event kind {event.kind!r}")
        return check(event)

    # ---- checks -------------------------------------------------------------------------

    def _check_rpc(self, event: Event) -> Handler:
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

    def _check_fetch(self, event: Event) -> Handler:
        if self._cls.fetch is DurableObject.fetch:
            raise CallRefused(f"{self._cls.__name__} has no fetch handler")
        if not isinstance(event.payload, list) or len(event.payload) not in (5, 6):
            raise CallRefused("malformed fetch event")
        return self._call_fetch

    def _check_socket(self, event: Event) -> Handler:
        if not isinstance(event.payload, list) or not event.payload:
            raise CallRefused("malformed WebSocket event")
        return functools.partial(self._call_socket, event.kind)

    def _check_alarm(self, event: Event) -> Handler:
        retries, mode = event.payload
        return functools.partial(self._call_alarm, int(retries), str(mode))

    def _check_control(self, event: Event) -> Handler:
        if not isinstance(event.payload, list) or not event.payload:
            raise CallRefused("malformed control event")
        operation, *arguments = event.payload
        control = self._controls.get(operation) if isinstance(operation, str) else None
        handler = None if control is None else control(arguments)
        if handler is None:
            raise CallRefused(f"unknown control operation {operation!r}")
        return handler

    def _control_sql(self, arguments: list[Any]) -> Handler | None:
        if len(arguments) != 2:
            return None
        return functools.partial(self._call_sql, arguments[0], list(arguments[1]))

    def _rpc_method(self, name: object) -> Any:
        cls = self._cls
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

    # ---- handlers -----------------------------------------------------------------------

    async def _call_rpc(
        self,
        method_name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        slot: ObjectSlot,
        event: Event,
    ) -> bytes:
        instance = self._activate(slot)
        result = await getattr(instance, method_name)(*args, **kwargs)
        try:
            data = codec.encode(result)
        except codec.EncodeError as exc:
            raise TypeError(
                f"{self._cls.__name__}.{method_name} returned an unencodable value: {exc}"
            ) from None
        self._spec.limits.check("message_bytes", len(data), "the RPC result")
        return data

    async def _call_alarm(self, retries: int, mode: str, slot: ObjectSlot, event: Event) -> bool:
        """Run the object's alarm if it is due (or at once for mode "now"); True if it ran."""
        core = slot.core
        due = core.stored_alarm()
        if due is None:
            self._alarms.forget(slot.object_id.hex)
            return False
        if mode == "drop" or not self.has_alarm_handler:
            core.write_alarm(None)
            return False
        if mode == "due" and due > now_ms():
            self._alarms.arm(slot.object_id.hex, slot.object_id.name, due, retries)
            return False
        instance = self._activate(slot)
        self._metrics.alarms += 1
        # The alarm stays stored until the handler succeeds, so a failure (even after the
        # handler committed some writes) leaves it for the retry; it reads None meanwhile.
        core.alarm_running, core.alarm_replaced = True, False
        try:
            limit = self._spec.limits.alarm_seconds
            try:
                await asyncio.wait_for(instance.alarm(AlarmInfo(retries, due)), limit)  # type: ignore[attr-defined]
            except TimeoutError:
                raise TimeoutError(
                    f"alarm() ran longer than {limit} s and was cancelled (limit alarm_seconds)"
                ) from None
            replaced = core.alarm_replaced
        finally:
            core.alarm_running = core.alarm_replaced = False
        if not replaced:
            core.write_alarm(None)
        return True

    async def _call_sql(
        self, query: str, params: list[Any], slot: ObjectSlot, event: Event
    ) -> bytes:
        cursor = slot.ctx.storage.sql.exec(query, *params)
        return codec.encode({"columns": cursor.column_names, "rows": cursor.fetchall()})

    async def _call_evict(self, slot: ObjectSlot, event: Event) -> bool:
        slot.evict_requested = True  # once this turn and the queue behind it are done
        return True

    # ---- WebSockets (an upgrade's fetch, and the socket events) -------------------------

    async def _call_fetch(self, slot: ObjectSlot, event: Event) -> list[Any]:
        instance = self._activate(slot)
        request = payload_request(event.payload[:5])
        upgrade = event.payload[5] if len(event.payload) == 6 else None
        if upgrade is not None:
            request.scope[UPGRADE_SCOPE_KEY] = (str(upgrade[0]), str(upgrade[1]))
        response = await instance.fetch(request)
        reply = await response_payload(response, self._spec.limits)
        if upgrade is not None and reply[0] != 101 and slot.sockets.record(str(upgrade[0])):
            slot.sockets.forget(str(upgrade[0]))  # accepted, then refused: nobody holds it
        if upgrade is not None and reply[0] == 101:
            sid, gateway = str(upgrade[0]), str(upgrade[1])
            if slot.sockets.record(sid) is None:
                raise TypeError("fetch answered 101 without ctx.accept_websocket(request)")
            self._gateways.holds(gateway, slot.object_id.hex, sid)
            reply.append(slot.sockets.auto_response)
        return reply

    async def _call_socket(self, kind: EventKind, slot: ObjectSlot, event: Event) -> None:
        sid = str(event.payload[0])
        record = slot.sockets.record(sid)
        if record is None:
            return  # closed already (by the object, or a duplicate close)
        instance = self._activate(slot)
        ws = WebSocket(slot.sockets, sid)
        if kind == EventKind.WS_CLOSE:
            # The socket is gone whatever the handler does: forget it for good first, then
            # let the handler see what it was (its tags and attachment).
            slot.sockets.forget(sid)
            slot.core.commit()
            self._gateways.released(record.gateway, slot.object_id.hex, sid)
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
