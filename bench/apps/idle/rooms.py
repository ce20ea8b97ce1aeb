from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from raydo import DurableObject


class IdleRoom(DurableObject):
    constructed = 0

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        IdleRoom.constructed += 1

    async def fetch(self, request: Request) -> Response:
        return self.ctx.accept_websocket(request)

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        ws.send(f"{message} {IdleRoom.constructed}")
