"""The counter example's HTTP API.

* ``POST /counter/{name}/increment``: add one (RPC), answer ``{"name": ..., "value": n}``;
* ``GET /counter/{name}``: read the value (RPC);
* ``GET|POST /counter/{name}/fetch``: the same through the object's own ``fetch`` handler;
* ``GET /counter/{name}/id``: the object's id (the same from every gateway process).
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def increment(request: Request) -> Response:
    name = request.path_params["name"]
    value = await request.state.env.COUNTER.get_by_name(name).increment()
    return JSONResponse({"name": name, "value": value})


async def read(request: Request) -> Response:
    name = request.path_params["name"]
    value = await request.state.env.COUNTER.get_by_name(name).value()
    return JSONResponse({"name": name, "value": value})


async def forward(request: Request) -> Response:
    stub = request.state.env.COUNTER.get_by_name(request.path_params["name"])
    response: Response = await stub.fetch(request)
    return response


async def object_id(request: Request) -> Response:
    name = request.path_params["name"]
    return JSONResponse({"name": name, "id": str(request.state.env.COUNTER.id_from_name(name))})


app = Starlette(
    routes=[
        Route("/counter/{name}/increment", increment, methods=["POST"]),
        Route("/counter/{name}/fetch", forward, methods=["GET", "POST"]),
        Route("/counter/{name}/id", object_id, methods=["GET"]),
        Route("/counter/{name}", read, methods=["GET"]),
    ]
)
