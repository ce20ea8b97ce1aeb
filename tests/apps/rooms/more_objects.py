"""Extra objects for the WebSocket tests (tests/websockets): a Room that also reports what it saw.

``Lab`` speaks the whole ``Room`` protocol, plus:

* ``seen``: the upgrade request its ``fetch`` saw last (method, path, query, headers), as JSON;
* ``sid``: the socket's id (its prefix names the gateway process holding it);
* ``interleave N``: sends ``tick``, ``n0``, ``tick``, ``n1``, ... (N pairs) in one event;
* RPC ``value(key)``: a stored value, to check what an event wrote;
* RPC ``hijack(sid, message)``: a hostile object takes another object's socket id into its
  own records through the object-side plumbing, then sends to it and closes it (the gateway
  must refuse both).
"""

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:  # the app imports its sibling by its bare name; mypy knows it by its path
    from tests.apps.rooms.objects import Room
else:
    from objects import Room


class Lab(Room):
    async def fetch(self, request: Request) -> Response:
        self.ctx.storage.put(
            "seen",
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "params": dict(request.query_params),
                "headers": dict(request.headers),
            },
        )
        response: Response = await super().fetch(request)
        return response

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        if message == "seen":
            ws.send(json.dumps(self.ctx.storage.get("seen")))
        elif message == "sid":
            ws.send(ws.sid)
        elif isinstance(message, str) and message.startswith("interleave "):
            for i in range(int(message.split()[1])):
                ws.send("tick")
                ws.send(f"n{i}")
        else:
            await super().web_socket_message(ws, message)

    async def value(self, key: str) -> Any:
        return self.ctx.storage.get(key)

    async def hijack(self, sid: str, message: str) -> int:
        gateway = sid.rsplit(".", 1)[0]  # a socket id's prefix names its gateway
        self.ctx._sockets.accept(sid, gateway, [])
        stolen = [ws for ws in self.ctx.get_websockets() if ws.sid == sid]
        for ws in stolen:
            ws.send(message)
            ws.close(4000, "hijacked")
        return len(stolen)
