"""Dispatch: from an event's kind to the handler that runs it inside the object's turn.

:meth:`Dispatcher.handler` checks an event before any user code runs (a refusal resets
nothing) and answers the coroutine function the turn awaits, from one table by
:class:`EventKind`; control events (the testing and inspection hooks) have their own table of
three operations: ``alarm`` (run the alarm now), ``sql`` (one statement on the object's
storage) and ``evict`` (evict once idle). Every payload is read into its record
(:mod:`actors._payloads`) before anything runs; nothing here takes a payload apart by index.
The WebSocket parts (an upgrade's ``fetch``, and the socket events) go through the host's one
socket collaborator, :class:`~actors.websockets.HostSockets`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, cast

from starlette.responses import StreamingResponse

from raydo.storage import codec

from ._alarm_runs import HostAlarms
from ._alarms import AlarmInfo, now_ms
from ._errors import CallRefused, StreamBroken
from ._http import fetch_request, response_reply
from ._metrics import HostMetrics
from ._object import RESERVED_NAMES, Aborted, DurableObject
from ._payloads import (
    PAYLOADS,
    AlarmRun,
    Control,
    FetchRequest,
    RpcCall,
    SocketClose,
    SocketError,
    SocketMessage,
)
from ._slot import ObjectSlot
from ._spec import RuntimeSpec
from ._streamed_reply import stream_reply
from ._streams import HostStreams
from ._turn import current_turn
from .types import Event, EventKind
from .websockets import HostSockets

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
        sockets: HostSockets,
        metrics: HostMetrics,
    ) -> None:
        self._cls = cls
        self._spec = spec
        self._activate = activate
        self._alarms = alarms
        self._sockets = sockets
        self._metrics = metrics
        self.has_alarm_handler = getattr(cls, "alarm", None) is not None
        # Names that passed _rpc_method's checks (at most the class's own methods): the class
        # is this dispatcher's for its whole life, so each name is checked once, not per call.
        self._rpc_methods: dict[str, Any] = {}
        self._checks: dict[int, Callable[[Any], Handler]] = {
            EventKind.RPC: self._check_rpc,
            EventKind.FETCH: self._check_fetch,
            EventKind.WS_MESSAGE: self._check_socket,
            EventKind.WS_CLOSE: self._check_socket,
            EventKind.WS_ERROR: self._check_socket,
            EventKind.ALARM: self._check_alarm,
            EventKind.CONTROL: self._check_control,
        }
        self._controls: dict[str, Callable[[tuple[Any, ...]], Handler | None]] = {
            "alarm": lambda arguments: functools.partial(self._call_alarm, 0, "now"),
            "sql": self._control_sql,
            "evict": lambda arguments: self._call_evict,
        }

    def handler(self, event: Event) -> Handler:
        """The handler of ``event``, or :class:`CallRefused` (a malformed or unknown event:
        nothing of the object runs)."""
        kind = event.kind
        check = self._checks.get(kind) if isinstance(kind, int) else None
        if check is None:
            raise CallRefused(f"unknown event kind {kind!r}")
        try:
            payload = PAYLOADS[kind](event.payload)
        except (ValueError, TypeError) as exc:
            raise CallRefused(str(exc)) from None
        return check(payload)

    # ---- checks: from a payload's record to the handler ---------------------------------

    def _check_rpc(self, call: RpcCall) -> Handler:
        self._rpc_method(call.method)
        try:
            args, kwargs = codec.decode(call.arguments)
            args, kwargs = list(args), dict(kwargs)
            if not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
                raise TypeError("keyword argument names must be identifiers")
        except (codec.DecodeError, TypeError, ValueError) as exc:
            raise CallRefused(f"malformed RPC arguments: {exc}") from None
        return functools.partial(self._call_rpc, call.method, args, kwargs)

    def _check_fetch(self, fetch: FetchRequest) -> Handler:
        if self._cls.fetch is DurableObject.fetch:
            raise CallRefused(f"{self._cls.__name__} has no fetch handler")
        return functools.partial(self._call_fetch, fetch)

    def _check_socket(self, socket_event: SocketMessage | SocketClose | SocketError) -> Handler:
        return functools.partial(self._call_socket, socket_event)

    def _check_alarm(self, run: AlarmRun) -> Handler:
        return functools.partial(self._call_alarm, run.retries, run.mode)

    def _check_control(self, control: Control) -> Handler:
        operation = self._controls.get(control.operation)
        handler = None if operation is None else operation(control.arguments)
        if handler is None:
            raise CallRefused(f"unknown control operation {control.operation!r}")
        return handler

    def _control_sql(self, arguments: tuple[Any, ...]) -> Handler | None:
        if len(arguments) != 2 or not isinstance(arguments[1], list | tuple):
            raise CallRefused("malformed control event: sql takes a query and its parameters")
        return functools.partial(self._call_sql, arguments[0], list(arguments[1]))

    def _rpc_method(self, name: object) -> Any:
        known = self._rpc_methods.get(name) if isinstance(name, str) else None
        if known is not None:
            return known
        method = self._checked_rpc_method(name)
        self._rpc_methods[cast(str, name)] = method
        return method

    def _checked_rpc_method(self, name: object) -> Any:
        cls = self._cls
        if not isinstance(name, str) or not name.isidentifier():
            raise CallRefused(f"{name!r} is not a method name")
        if name.startswith("_"):
            raise CallRefused(f"{cls.__name__}.{name} is private: RPC reaches public methods only")
        # A base class may name more handlers (the ``workers`` SDK's ``webSocketMessage``).
        if name in RESERVED_NAMES or name in getattr(cls, "__raydo_handlers__", ()):
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

    async def _instance(self, slot: ObjectSlot) -> DurableObject:
        """The object's instance (constructed now unless it is active), once no critical
        section of another task holds its gate (one its constructor started, say)."""
        instance = self._activate(slot)
        if slot.gate.held:
            await slot.gate.passed()
            if slot.ctx._reset_requested:
                raise Aborted("block_concurrency_while() raised", retry_alarm=True)
        return instance

    async def _call_rpc(
        self,
        method_name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        slot: ObjectSlot,
        event: Event,
    ) -> bytes:
        instance = await self._instance(slot)
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
        instance = await self._instance(slot)
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

    async def _call_fetch(
        self, fetch: FetchRequest, slot: ObjectSlot, event: Event
    ) -> list[Any] | None:
        instance = await self._instance(slot)
        streams: HostStreams | None = event.streams
        body = None if streams is None else streams.request
        limits = self._spec.limits
        request = fetch_request(fetch, body, limits)
        try:
            self._sockets.prepare_upgrade(request, fetch)
            response = await instance.fetch(request)
            turn = current_turn.get()
            if (
                isinstance(response, StreamingResponse)
                and streams is not None
                and fetch.upgrade is None
                and turn is not None
                and turn.answer is not None
            ):  # the head answers now; the body follows inside this turn
                await stream_reply(response, streams, slot.core.commit, turn.answer, limits)
                return None
            reply = await response_reply(response, limits)
        finally:
            if body is not None:
                body.cancel(StreamBroken("the object's fetch ended before the request body did"))
        return self._sockets.answer_upgrade(slot.sockets, slot.object_id.hex, fetch, reply).encode()

    async def _call_socket(
        self,
        socket_event: SocketMessage | SocketClose | SocketError,
        slot: ObjectSlot,
        event: Event,
    ) -> None:
        if slot.sockets.record(socket_event.sid) is not None:
            await self._instance(slot)
        await self._sockets.run_event(
            functools.partial(self._activate, slot),
            slot.sockets,
            slot.object_id.hex,
            socket_event,
            slot.core.commit,
        )
