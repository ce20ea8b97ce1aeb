"""The model binding over HTTP: ``POST /embed`` takes ``{"model", "inputs"}``."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def embed(request: Request) -> Response:
    body = await request.json()
    return JSONResponse(await request.state.env.AI.run(body["model"], body["inputs"]))


app = Starlette(routes=[Route("/embed", embed, methods=["POST"])])
