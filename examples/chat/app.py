"""The chat example's HTTP side: the page, the room's WebSocket, and its history as JSON.

* ``GET /``: the chat page (``static/index.html``, no build step);
* ``GET /room/{room}/ws?name=NAME``: join a room over a WebSocket;
* ``GET /room/{room}/history``: the room's recent messages.
"""

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

PAGE = Path(__file__).parent / "static" / "index.html"


async def page(request: Request) -> Response:
    return FileResponse(PAGE, media_type="text/html")


async def join(websocket: WebSocket) -> None:
    stub = websocket.state.env.ROOM.get_by_name(websocket.path_params["room"])
    await stub.fetch(websocket)


async def history(request: Request) -> Response:
    stub = request.state.env.ROOM.get_by_name(request.path_params["room"])
    return JSONResponse(await stub.recent())


app = Starlette(
    routes=[
        Route("/", page),
        WebSocketRoute("/room/{room}/ws", join),
        Route("/room/{room}/history", history),
    ]
)
