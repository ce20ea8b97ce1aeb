"""``asgi.fetch(app, request, env)``: serve a Worker's request with an ASGI app (FastAPI,
Starlette), as the platform's ``asgi`` module does; ``asgi.entrypoint(app)`` makes the
``Default`` Worker class that does only that.

The app sees an ASGI 3 ``http`` scope built from the request, with ``scope["env"]`` the
Worker's env (``request.scope["env"].DB`` in FastAPI). The request body is passed in one
message and the response collected whole. Lifespan events are not sent (as on the platform).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message

from ._entrypoint import WorkerEntrypoint
from ._env import worker_env
from ._http import Request, Response

__all__ = ["entrypoint", "fetch"]


def _scope(request: Request, env: Any) -> dict[str, Any]:
    url = urlsplit(request.url)
    if not url.scheme:
        raise ValueError(f"the request URL is not absolute: {request.url!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": unquote(url.path or "/"),
        "raw_path": (url.path or "/").encode(),
        "query_string": url.query.encode(),
        "root_path": "",
        "headers": list(request.headers.raw),
        "client": ("127.0.0.1", 0),
        "server": (url.hostname or "localhost", port),
        "env": env,
        "state": {"env": env},
    }


async def fetch(app: ASGIApp, request: Request, env: Any, ctx: Any = None) -> Response:
    """Run ``app`` on ``request`` and return its answer as a :class:`~workers.Response`."""
    if not isinstance(request, Request):
        raise TypeError(f"asgi.fetch takes a workers.Request, got {type(request).__name__}")
    body = await request._load()
    scope = _scope(request, worker_env(env))
    sent_body = False
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    started = False

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers, started
        if message["type"] == "http.response.start":
            started = True
            status = int(message["status"])
            headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    if not started:
        raise RuntimeError("the ASGI app returned without starting a response")
    response = Response(b"".join(chunks), status)
    response.headers = MutableHeaders(raw=[(k.lower(), v) for k, v in headers])
    return response


def entrypoint(app: ASGIApp) -> type[WorkerEntrypoint]:
    """A ``WorkerEntrypoint`` class serving every request with ``app``:
    ``Default = asgi.entrypoint(app)``."""

    class Default(WorkerEntrypoint):
        async def fetch(self, request: Request) -> Response:
            return await fetch(app, request, self.env, self.ctx)

    return Default
