from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket


async def room(websocket: WebSocket) -> None:
    stub = websocket.state.env.ROOM.get_by_name(websocket.path_params["name"])
    await stub.fetch(websocket)


app = Starlette(routes=[WebSocketRoute("/room/{name}", room)])
