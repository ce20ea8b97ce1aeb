"""The queues test app: POST /send/{binding} enqueues the JSON body's "messages"."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def send(request: Request) -> JSONResponse:
    queue = getattr(request.state.env, request.path_params["binding"])
    data = await request.json()
    await queue.send_batch([{"body": body} for body in data["messages"]])
    return JSONResponse({"sent": len(data["messages"])})


app = Starlette(routes=[Route("/send/{binding}", send, methods=["POST"])])
