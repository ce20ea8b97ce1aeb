"""WebSockets to a room: /ws/<binding>/<name> hands the upgrade to that object."""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket


async def socket(websocket: WebSocket) -> None:
    binding = getattr(websocket.state.env, websocket.path_params["binding"])
    await binding.get_by_name(websocket.path_params["name"]).fetch(websocket)


app = Starlette(routes=[WebSocketRoute("/ws/{binding}/{name}", socket)])
