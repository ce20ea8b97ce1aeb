"""A room that accepts every WebSocket and never answers it (the ping flood needs none)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from raydo import DurableObject


class Room(DurableObject):
    async def fetch(self, request: Request) -> Response:
        return self.ctx.accept_websocket(request)
