from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket


async def room(websocket: WebSocket) -> None:
    await websocket.state.env.ROOM.get_by_name(websocket.path_params["name"]).fetch(websocket)


app = Starlette(routes=[WebSocketRoute("/room/{name}", room)])
