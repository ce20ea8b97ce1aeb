"""``wsgi.fetch(app, request, env)``: serve a Worker's request with a WSGI app (Flask,
Django), as the platform's ``wsgi`` module does; ``wsgi.entrypoint(app)`` makes the
``Default`` Worker class that does only that.

The app runs in a worker thread (WSGI is synchronous), with the body buffered as
``wsgi.input`` and the Worker's env as ``environ["workers.env"]``; the response is collected
whole.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from ._entrypoint import WorkerEntrypoint
from ._env import worker_env
from ._http import Request, Response

__all__ = ["entrypoint", "fetch"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _environ(request: Request, env: Any, body: bytes) -> dict[str, Any]:
    url = urlsplit(request.url)
    if not url.scheme:
        raise ValueError(f"the request URL is not absolute: {request.url!r}")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        # PEP 3333's native strings: the path's bytes, decoded as latin-1.
        "PATH_INFO": unquote(url.path or "/").encode().decode("latin-1"),
        "QUERY_STRING": url.query,
        "SERVER_NAME": url.hostname or "localhost",
        "SERVER_PORT": str(url.port or (443 if url.scheme == "https" else 80)),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "workers.env": env,
    }
    for name, value in request.headers.items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    if body and "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _run(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    state: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and "status" in state:
            raise exc_info[1].with_traceback(exc_info[2])
        state["status"], state["headers"] = status, headers
        return written.append

    result = app(environ, start_response)
    try:
        chunks = [*written, *result]
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if "status" not in state:
        raise RuntimeError("the WSGI app did not call start_response()")
    return state["status"], state["headers"], b"".join(chunks)


async def fetch(app: WSGIApp, request: Request, env: Any, ctx: Any = None) -> Response:
    """Run ``app`` on ``request`` in a thread and return its answer as a
    :class:`~workers.Response`."""
    if not isinstance(request, Request):
        raise TypeError(f"wsgi.fetch takes a workers.Request, got {type(request).__name__}")
    environ = _environ(request, worker_env(env), await request._load())
    status, headers, body = await asyncio.to_thread(_run, app, environ)
    code, _, reason = status.partition(" ")
    response = Response(body, int(code), status_text=reason)
    for name, value in headers:
        response.headers.append(name, value)
    return response


def entrypoint(app: WSGIApp) -> type[WorkerEntrypoint]:
    """A ``WorkerEntrypoint`` class serving every request with ``app``:
    ``Default = wsgi.entrypoint(app)``."""

    class Default(WorkerEntrypoint):
        async def fetch(self, request: Request) -> Response:
            return await fetch(app, request, self.env, self.ctx)

    return Default
