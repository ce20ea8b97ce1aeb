"""``workers.DurableObject``: a raydo object written with the platform's Python face.

It *is* a :class:`raydo.DurableObject` subclass, hosted, placed and persisted by raydo as any
other; only what user code touches is spelled as on the platform. When a subclass is defined:

* its ``__init__`` is wrapped so that it receives the platform's ``ctx``
  (:class:`DurableObjectState`) and ``env`` (:class:`~workers._env.WorkerEnv`) faces;
* its ``fetch`` is wrapped: raydo's Starlette request in, the platform's
  :class:`~workers.Request` to the handler, its :class:`~workers.Response` back out (a 101
  with ``web_socket=client`` becomes raydo's accepted upgrade);
* its ``alarm`` gets the platform's alarm info (``retryCount``, ``isRetry``) if it takes one;
* raydo's socket handlers call ``webSocketMessage``, ``webSocketClose`` and
  ``webSocketError`` with the platform's socket; those names are never callable over RPC.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

from starlette.requests import Request as _StarletteRequest
from starlette.responses import Response as _StarletteResponse

from raydo.actors import DurableObject as _RaydoObject
from raydo.actors import ObjectContext

from ._env import DurableObjectId, worker_env
from ._http import Request, Response
from ._storage import Storage
from ._websockets import WebSocket, WebSocketRequestResponsePair, face

T = TypeVar("T")
SOCKET_HANDLERS = frozenset({"webSocketMessage", "webSocketClose", "webSocketError"})


class DurableObjectState:
    """``self.ctx`` of a :class:`DurableObject`: ``id``, ``storage``, ``acceptWebSocket``,
    ``getWebSockets``, ``getTags``, ``setWebSocketAutoResponse``,
    ``getWebSocketAutoResponse``, ``blockConcurrencyWhile``, ``waitUntil``, ``abort``."""

    def __init__(self, ctx: ObjectContext) -> None:
        self.__raydo_context__ = ctx
        self.id = DurableObjectId(ctx.id)
        self.storage = Storage(ctx.storage)
        self._request: _StarletteRequest | None = None

    def acceptWebSocket(self, ws: WebSocket, tags: Iterable[str] | None = None) -> None:
        """Accept the server end of a :class:`WebSocketPair` for the upgrade this ``fetch``
        is handling; return the client end in ``Response(None, status=101, web_socket=)``."""
        if not isinstance(ws, WebSocket) or ws._client or ws._peer is None:
            raise TypeError("acceptWebSocket takes the server end of a WebSocketPair")
        if ws._handle is not None:
            raise ValueError("this WebSocket is already accepted")
        if self._request is None:
            raise RuntimeError(
                "acceptWebSocket works inside fetch(), for the WebSocket upgrade request it"
                " is handling"
            )
        accepted = self.__raydo_context__.accept_websocket(self._request, tags or ())
        ws._handle = accepted.websocket
        ws._peer._accepted = accepted

    def getWebSockets(self, tag: str | None = None) -> list[WebSocket]:
        return [face(h) for h in self.__raydo_context__.get_websockets(tag)]

    def getTags(self, ws: WebSocket) -> list[str]:
        return self.__raydo_context__.get_tags(ws._socket())

    def setWebSocketAutoResponse(self, pair: WebSocketRequestResponsePair | None = None) -> None:
        if pair is None:
            self.__raydo_context__.set_websocket_auto_response()
        else:
            self.__raydo_context__.set_websocket_auto_response(pair.request, pair.response)

    def getWebSocketAutoResponse(self) -> WebSocketRequestResponsePair | None:
        pair = self.__raydo_context__.get_websocket_auto_response()
        return None if pair is None else WebSocketRequestResponsePair(*pair)

    def blockConcurrencyWhile(self, fn: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """Hold the object's other events while ``fn`` runs; awaitable. From the constructor
        it need not be awaited (it cannot be): it runs anyway, and the object's first event
        waits for it, as the platform's does."""
        return self.__raydo_context__.block_concurrency_while(fn)

    def waitUntil(self, awaitable: Awaitable[Any]) -> None:
        self.__raydo_context__.wait_until(awaitable)

    wait_until = waitUntil

    def abort(self, reason: str | None = None) -> NoReturn:
        self.__raydo_context__.abort(reason or "")


class AlarmInvocationInfo:
    """What ``alarm(alarm_info)`` is told: ``retryCount`` and ``isRetry``."""

    def __init__(self, info: Any) -> None:
        self.retryCount: int = info.retry_count
        self.isRetry: bool = info.is_retry
        self.scheduledTime: int = info.scheduled_time


def _wrap_init(cls: type[Any]) -> None:
    original = cls.__dict__.get("__init__")
    if original is None or getattr(original, "__workers_face__", False):
        return

    @functools.wraps(original)
    def init(self: Any, ctx: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(ctx, ObjectContext):
            ctx = DurableObjectState(ctx)
        original(self, ctx, worker_env(env), *args, **kwargs)

    init.__workers_face__ = True  # type: ignore[attr-defined]
    cls.__init__ = init


def _wrap_fetch(cls: type[Any]) -> None:
    original = cls.__dict__.get("fetch")
    if original is None or getattr(original, "__workers_face__", False):
        return

    @functools.wraps(original)
    async def fetch(self: Any, request: Any) -> Any:
        if not isinstance(request, _StarletteRequest):
            return await original(self, request)
        self.ctx._request = request
        try:
            response = await original(self, Request._from_starlette(request))
        finally:
            self.ctx._request = None
        return _answer(cls, response)

    fetch.__workers_face__ = True  # type: ignore[attr-defined]
    cls.fetch = fetch


def _answer(cls: type[Any], response: Any) -> _StarletteResponse:
    if isinstance(response, _StarletteResponse):
        return response
    if not isinstance(response, Response):
        raise TypeError(
            f"{cls.__name__}.fetch must return a workers.Response, got {type(response).__name__}"
        )
    if response.web_socket is not None:
        peer = response.web_socket._peer
        accepted = response.web_socket._accepted
        if not response.web_socket._client or peer is None or accepted is None:
            raise TypeError(
                "web_socket= takes the client end of a WebSocketPair whose server end"
                " this fetch accepted with self.ctx.acceptWebSocket(server)"
            )
        return accepted  # type: ignore[no-any-return]
    return response._to_starlette()


def _wrap_alarm(cls: type[Any]) -> None:
    original = cls.__dict__.get("alarm")
    if original is None or getattr(original, "__workers_face__", False):
        return
    takes_info = len(inspect.signature(original).parameters) > 1

    @functools.wraps(original)
    async def alarm(self: Any, info: Any = None) -> None:
        if takes_info:
            await original(self, None if info is None else AlarmInvocationInfo(info))
        else:
            await original(self)

    alarm.__workers_face__ = True  # type: ignore[attr-defined]
    cls.alarm = alarm


if TYPE_CHECKING:

    class _Base:
        """What type checkers see: the platform's signatures, not raydo's Starlette ones
        (at run time the base is raydo's DurableObject, and the wrappers above convert)."""

        def __init__(self, ctx: Any, env: Any) -> None: ...

else:
    _Base = _RaydoObject


class DurableObject(_Base):
    """Base class of a Durable Object written as on the platform.

    ``self.ctx`` is a :class:`DurableObjectState`, ``self.env`` the Worker's env. Define
    ``fetch(request)``, ``alarm()``, ``webSocketMessage(ws, message)``,
    ``webSocketClose(ws, code, reason, was_clean)``, ``webSocketError(ws, error)`` and any
    public ``async def`` method, callable over RPC from stubs.
    """

    __raydo_handlers__: ClassVar[frozenset[str]] = SOCKET_HANDLERS
    ctx: Any
    env: Any

    def __init__(self, ctx: Any, env: Any) -> None:
        if isinstance(ctx, ObjectContext):
            ctx = DurableObjectState(ctx)
        super().__init__(ctx, worker_env(env))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _wrap_init(cls)
        _wrap_fetch(cls)
        _wrap_alarm(cls)

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        handler = getattr(self, "webSocketMessage", None)
        if handler is not None:
            await handler(face(ws), message)

    async def web_socket_close(self, ws: Any, code: int, reason: str, was_clean: bool) -> None:
        handler = getattr(self, "webSocketClose", None)
        if handler is not None:
            await handler(face(ws), code, reason, was_clean)

    async def web_socket_error(self, ws: Any, error: Any) -> None:
        handler = getattr(self, "webSocketError", None)
        if handler is not None:
            await handler(face(ws), error)
