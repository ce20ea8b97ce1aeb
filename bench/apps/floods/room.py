"""A room that accepts every WebSocket and never answers it (the ping flood needs none), and
answers a POST with the size of its body (the frozen-host flood)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from raydo import DurableObject


class Room(DurableObject):
    async def fetch(self, request: Request) -> Response:
        if request.method == "POST":
            return Response(str(len(await request.body())))
        return self.ctx.accept_websocket(request)
