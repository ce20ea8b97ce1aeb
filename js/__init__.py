"""The part of Pyodide's ``js`` module Python Workers code imports for Durable Object
WebSockets: ``WebSocketPair``, ``WebSocketRequestResponsePair`` and ``Response`` (with
``Response.new(body, init)``). Every other name is an ``ImportError`` saying what to use: raydo
runs Python Workers on CPython, without a JavaScript runtime."""

from __future__ import annotations

from typing import Any

from workers import Response as _Response
from workers import WebSocketPair, WebSocketRequestResponsePair
from workers.unsupported import unsupported

__all__ = ["Response", "WebSocketPair", "WebSocketRequestResponsePair"]


class Response(_Response):
    """``workers.Response``, also made as ``Response.new(body, {"status": ..., "headers":
    ..., "webSocket": ...})``, as the JavaScript constructor is called from Pyodide."""

    @classmethod
    def new(cls, body: Any = None, init: dict[str, Any] | None = None, **options: Any) -> Response:
        given = {**(init or {}), **options}
        return cls(
            body,
            status=given.get("status"),
            status_text=given.get("statusText", ""),
            headers=given.get("headers"),
            web_socket=given.get("webSocket", given.get("web_socket")),
        )


def __getattr__(name: str) -> object:
    raise unsupported("js", name)
