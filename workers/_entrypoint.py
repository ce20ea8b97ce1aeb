"""``WorkerEntrypoint``: the Worker itself, served by raydo's gateway.

A ``raydo.toml`` whose ``main`` names a :class:`WorkerEntrypoint` subclass (``main =
"worker:Default"``) is served as that Worker: the gateway asks the class for its ASGI app
(``__raydo_app__``), a Starlette app with one catch-all route for HTTP and one for
WebSockets. For each request it constructs the class as ``cls(ctx, env)`` (as the platform
does, one instance per request) and awaits ``fetch(request)``:

1. the Starlette request (or WebSocket upgrade) becomes a :class:`~workers.Request`;
2. ``env`` is raydo's env behind the platform's names (:mod:`workers._env`), ``ctx`` a
   :class:`Context` (``waitUntil``, ``passThroughOnException``);
3. the :class:`~workers.Response` returned is sent; a streamed reply from an object streams;
   for a WebSocket, the upgrade the Worker handed to an object (``stub.fetch(request)``) is
   served by raydo, and any other response is the client's HTTP refusal.

A ``Default`` class's ``queue(batch)`` consumes the config's queues and its
``scheduled(controller)`` runs on its cron triggers (:mod:`workers._handlers`).

Errors from objects escaping ``fetch`` get raydo's JSON answers (503 overloaded, 413 ...), as
for any Starlette app. The work given to ``ctx.waitUntil`` runs after the response; the app's
shutdown waits for what is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request as _StarletteRequest
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket as _StarletteWebSocket
from starlette.websockets import WebSocketState

from ._context import Context
from ._env import worker_env
from ._handlers import FACES, event_handler
from ._http import Request, Response

log = logging.getLogger("raydo.workers")


class WorkerEntrypoint:
    """Base class of a Worker: subclass it (as ``Default``) and define ``fetch(request)``, and
    ``queue(batch)`` and ``scheduled(controller)`` for the config's queues and cron triggers.

    ``self.env`` holds the bindings, ``self.ctx`` the :class:`Context`. The runtime constructs
    one instance per request as ``cls(ctx, env)``.
    """

    ctx: Any
    env: Any

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = worker_env(env)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A ``Default`` class defining ``queue(batch)`` or ``scheduled(controller)`` puts the
        module-level ``queue(batch, env)`` / ``scheduled(controller, env)`` raydo calls by
        default into its module, unless the module defines its own (:mod:`workers._handlers`)."""
        super().__init_subclass__(**kwargs)
        module = sys.modules.get(cls.__module__)
        if cls.__name__ != "Default" or module is None:
            return
        for name in FACES:
            if name in vars(cls) and not hasattr(module, name):
                setattr(module, name, event_handler(cls, name))

    async def fetch(self, request: Request) -> Response:
        raise NotImplementedError(f"{type(self).__name__} has no fetch(self, request) handler")

    @classmethod
    def __raydo_app__(cls) -> Starlette:
        """The ASGI app the gateway serves for this Worker."""
        return worker_app(cls)


def worker_app(cls: type[WorkerEntrypoint]) -> Starlette:
    """A Starlette app calling ``cls(ctx, env).fetch(request)`` for each HTTP request and
    WebSocket upgrade."""
    if cls.fetch is WorkerEntrypoint.fetch:
        raise TypeError(f"{cls.__name__} has no fetch(self, request) handler: define one")
    tasks: set[asyncio.Task[Any]] = set()

    async def call(source: _StarletteRequest | _StarletteWebSocket) -> Response:
        worker = cls(Context(tasks), source.state.env)
        response = await worker.fetch(Request._from_starlette(source))
        if not isinstance(response, Response):
            raise TypeError(
                f"{cls.__name__}.fetch must return a workers.Response, got"
                f" {type(response).__name__}"
            )
        return response

    async def http(scope: Scope, receive: Receive, send: Send) -> None:
        response = (await call(_StarletteRequest(scope, receive)))._to_starlette()
        await response(scope, receive, send)

    async def websocket(socket: _StarletteWebSocket) -> None:
        response = await call(socket)
        if socket.application_state == WebSocketState.CONNECTING and response.status != 101:
            await socket.send_denial_response(response._to_starlette())
        elif socket.application_state == WebSocketState.CONNECTING:
            raise TypeError(
                "a Worker's 101 response must come from a Durable Object: pass the upgrade"
                " on with `return await stub.fetch(request)`"
            )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if tasks:
            await asyncio.gather(*list(tasks), return_exceptions=True)

    return Starlette(
        # ``http`` as a plain ASGI endpoint: every method reaches it, not only GET.
        routes=[Route("/{path:path}", _Asgi(http)), WebSocketRoute("/{path:path}", websocket)],
        lifespan=lifespan,
    )


class _Asgi:
    """An ASGI callable Starlette's router treats as an app (all methods), not a function."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)
