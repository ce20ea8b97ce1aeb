"""The seed article's ChatRoom: every message a session sends goes to every other session of
the room. Its sockets hibernate, so the room may be evicted while clients stay connected."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from raydo import DurableObject


class ChatRoom(DurableObject):
    async def fetch(self, request: Request) -> Response:
        return self.ctx.accept_websocket(request)

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        for other in self.ctx.get_websockets():
            if other != ws:
                other.send(message)
