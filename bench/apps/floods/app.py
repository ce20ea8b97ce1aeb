"""``/`` answers at once; ``/seed?rows=N`` fills the table ``big`` with N rows of 300 bytes;
``/first`` runs ``first()`` over all of them; ``/ws`` hands a WebSocket to the room;
``POST /put`` hands a request and its body to the room ``frozen``."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


async def home(request: Request) -> Response:
    return PlainTextResponse("ok")


async def seed(request: Request) -> Response:
    db: Any = request.state.env.DB
    rows = int(request.query_params.get("rows", "900000"))
    await db.exec("CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, v TEXT)")
    have = (await db.prepare("SELECT count(*) AS n FROM big").first())["n"]
    step = 50_000
    while have < rows:
        upto = min(rows, have + step)
        await (
            db.prepare(
                "WITH RECURSIVE c(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM c WHERE x < ?)"
                " INSERT INTO big SELECT x, substr(printf('%0300d', x), 1, 300) FROM c"
            )
            .bind(have + 1, upto)
            .run()
        )
        have = upto
    return JSONResponse({"rows": have})


async def first(request: Request) -> Response:
    db: Any = request.state.env.DB
    row = await db.prepare("SELECT * FROM big").first()
    return JSONResponse({"id": None if row is None else row["id"]})


async def room(websocket: WebSocket) -> None:
    await websocket.state.env.ROOM.get_by_name("flooded").fetch(websocket)


async def put(request: Request) -> Response:
    return await request.state.env.ROOM.get_by_name("frozen").fetch(request)


app = Starlette(
    routes=[
        Route("/", home),
        Route("/seed", seed, methods=["POST"]),
        Route("/first", first),
        Route("/put", put, methods=["POST"]),
        WebSocketRoute("/ws", room),
    ]
)
