"""The queues test app: POST /send/{binding} enqueues the JSON body's "messages"; GET /env
says what the handler's ``env`` shows (its names, and whether internal ones are reachable)."""

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


async def env_seen(request: Request) -> JSONResponse:
    env = request.state.env
    return JSONResponse(
        {
            "dir": dir(env),
            "internal": [name for name in ("_QUEUE_BROKER", "_QUEUES") if getattr(env, name, None)],
        }
    )


app = Starlette(routes=[Route("/send/{binding}", send, methods=["POST"]), Route("/env", env_seen)])
