"""HTTP for the replication tests: write and read one key of one object."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def write(request: Request) -> Response:
    stub = request.state.env.NOTES.get_by_name(request.path_params["name"])
    count = await stub.write(request.path_params["key"], (await request.body()).decode())
    return JSONResponse({"count": count})


async def read(request: Request) -> Response:
    stub = request.state.env.NOTES.get_by_name(request.path_params["name"])
    return JSONResponse({"value": await stub.read(request.path_params["key"])})


app = Starlette(
    routes=[
        Route("/notes/{name}/{key}", write, methods=["POST"]),
        Route("/notes/{name}/{key}", read, methods=["GET"]),
    ]
)
