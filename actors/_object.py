"""The base class users write objects with, and the context (``ctx``) each instance gets."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from ._ids import ObjectId
from ._input_gate import CriticalSection, InputGate
from ._turn import current_turn
from .websockets import ObjectSockets, WebSocket, WebSocketAccepted, accept_response

if TYPE_CHECKING:
    from raydo.storage import ObjectStorage, StorageCore

T = TypeVar("T")
AUTO_RESPONSE_CHARS = 2048
log = logging.getLogger("raydo.object")

# Handlers the runtime calls; never reachable over RPC.
HANDLER_NAMES = frozenset(
    {"fetch", "alarm", "web_socket_message", "web_socket_close", "web_socket_error"}
)


class Aborted(BaseException):
    """Raised by ``ctx.abort``: not an ``Exception``, so handlers cannot swallow it by accident."""

    def __init__(self, reason: str, retry_alarm: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_alarm = retry_alarm


class ObjectContext:
    """``self.ctx``: the object's id, its storage, and its hooks into the runtime.

    Its public names are the documented ones; what the host reads and sets lives in
    underscored attributes (the sockets, the reset request, the background work).
    """

    def __init__(
        self,
        object_id: ObjectId,
        storage: ObjectStorage,
        sockets: ObjectSockets,
        gate: InputGate | None = None,
    ) -> None:
        self.id = object_id
        self.storage = storage
        self._sockets = sockets
        self._gate = InputGate() if gate is None else gate
        self._background: set[asyncio.Future[Any]] = set()
        self._reset_requested = False

    # ---- WebSockets -----------------------------------------------------------------------

    def accept_websocket(self, request: Request, tags: Iterable[str] = ()) -> WebSocketAccepted:
        """Accept the WebSocket upgrade ``request`` and return the 101 response to give back
        (its ``websocket`` attribute is the new socket's handle).

        The socket lives in the gateway; this object keeps its record, ``tags`` (at most 10,
        256 characters each) and attachment, across eviction and restarts, and receives its
        events in ``web_socket_message``, ``web_socket_close`` and ``web_socket_error``.
        """
        return accept_response(request, self._sockets, tags)

    def get_websockets(self, tag: str | None = None) -> list[WebSocket]:
        """Every open socket of this object, or those with ``tag``; sleeping ones included."""
        return self._sockets.handles(tag)

    def get_tags(self, ws: WebSocket) -> list[str]:
        """The tags ``ws`` was accepted with."""
        if not isinstance(ws, WebSocket) or self._sockets.record(ws.sid) is None:
            raise ValueError(f"{ws!r} is not an open socket accepted by this object")
        return ws.tags

    def set_websocket_auto_response(
        self, request_text: str | None = None, response_text: str | None = None
    ) -> None:
        """Have the gateway answer a text message equal to ``request_text`` with
        ``response_text`` itself, without waking this object; no arguments unset it."""
        if request_text is None and response_text is None:
            self._sockets.set_auto_response(None)
            return
        if not isinstance(request_text, str) or not isinstance(response_text, str):
            raise TypeError("set_websocket_auto_response takes two str (or none to unset)")
        if len(request_text) > AUTO_RESPONSE_CHARS or len(response_text) > AUTO_RESPONSE_CHARS:
            raise ValueError(f"auto-response texts are at most {AUTO_RESPONSE_CHARS} characters")
        self._sockets.set_auto_response((request_text, response_text))

    def get_websocket_auto_response(self) -> tuple[str, str] | None:
        return self._sockets.auto_response

    def block_concurrency_while(self, fn: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """Run ``fn()`` (an async function) with no other event of this object delivered
        until it finishes; await the result for ``fn``'s value.

        The section starts at the call: awaited at once, ``fn`` runs in the awaiting event;
        called in the constructor (which cannot await), it runs on its own and the event
        that activated the object, like every other, waits until it is done. Nested calls
        inside ``fn`` run inside the section. Under ``concurrency = "strict"`` events run
        one at a time anyway; under ``"gates"`` this is how an event keeps the others out
        across its awaits. If ``fn`` raises, the exception propagates and the object is reset
        when the event ends (its uncommitted writes rolled back, its instance dropped), even
        if the caller catches it.
        """
        if not callable(fn):
            raise TypeError(
                f"block_concurrency_while() takes an async function, not {type(fn).__name__}"
            )
        return CriticalSection(self._gate, fn, self._request_reset)

    def _request_reset(self) -> None:
        self._reset_requested = True

    def abort(self, reason: str = "", *, retry_alarm: bool = True) -> NoReturn:
        """Reset the object now: the event's uncommitted writes are dropped, its caller gets
        ``ObjectReset``, the instance is discarded. Inside ``alarm()``, the alarm is retried
        unless ``retry_alarm`` is False."""
        raise Aborted(reason or "ctx.abort() was called", retry_alarm)

    def wait_until(self, awaitable: Awaitable[Any]) -> None:
        """Keep the object alive (not evicted) until ``awaitable`` finishes; do not wait for it.

        The work runs outside the event that started it: it is not part of that event's
        transaction, and its failure is logged, not raised anywhere.
        """
        if inspect.iscoroutine(awaitable):
            # A fresh context: the work must not act as the turn that scheduled it.
            context = contextvars.copy_context()
            context.run(current_turn.set, None)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_task(
                awaitable, context=context
            )
        else:
            future = asyncio.ensure_future(awaitable)
        self._background.add(future)
        future.add_done_callback(self._background_done)

    def _background_done(self, future: asyncio.Future[Any]) -> None:
        self._background.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("ctx.wait_until work of %r failed", self.id, exc_info=future.exception())

    @property
    def _busy_in_background(self) -> bool:
        return bool(self._background)

    async def _stop_background(self) -> None:
        """Cancel the ``wait_until`` work still running and wait until it has ended."""
        pending = list(self._background)
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class DurableObject:
    """Base class of every object: subclass it and add handlers and public async methods.

    The runtime constructs an instance on the first event for its id (and again after
    eviction or a reset) as ``cls(ctx, env)``, then delivers events one at a time:

    * ``fetch(request)``: a Starlette ``Request`` in, a Starlette ``Response`` out;
    * any public ``async def`` method: callable over RPC as ``await stub.method(...)``.

    Subclasses that override ``__init__`` must call ``super().__init__(ctx, env)``.
    """

    ctx: ObjectContext
    env: Any
    concurrency: ClassVar[str] = "strict"
    """``"strict"``: one event at a time, start to finish (the safer mode). ``"gates"``:
    Cloudflare's input gates, events interleave at awaits other than storage. A binding's
    ``concurrency`` key, when set, wins over this."""

    def __init__(self, ctx: ObjectContext, env: Any) -> None:
        self.ctx = ctx
        self.env = env

    async def fetch(self, request: Request) -> Response:
        raise NotImplementedError


class PlatformObject(DurableObject):
    """Base of the objects behind raydo's platform bindings (the database, key-value, queues).

    The host of an internal binding (``BindingSpec.internal``) constructs them as
    ``cls(ctx, env, core)``: ``core`` is the object's :class:`storage.StorageCore`, for what
    such an object needs beyond ``ctx.storage`` (its limits, its size, rolling back the event
    so far). A class of an app's own binding may not subclass it: its host refuses to load it.
    """

    def __init__(self, ctx: ObjectContext, env: Any, core: StorageCore) -> None:
        super().__init__(ctx, env)
        self.core = core


RESERVED_NAMES = frozenset(HANDLER_NAMES | set(dir(DurableObject)) | {"ctx", "env", "id", "name"})
