from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def increment(request: Request) -> JSONResponse:
    stub = request.state.env.PROBE.get_by_name(request.path_params["name"])
    return JSONResponse({"value": await stub.increment()})


async def sleep(request: Request) -> JSONResponse:
    stub = request.state.env.PROBE.get_by_name(request.path_params["name"])
    return JSONResponse({"value": await stub.sleep(float(request.query_params["seconds"]))})


app = Starlette(
    routes=[
        Route("/probe/{name}/increment", increment, methods=["POST"]),
        Route("/probe/{name}/sleep", sleep, methods=["POST"]),
    ]
)
