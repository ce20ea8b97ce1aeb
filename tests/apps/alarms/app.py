from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def set_alarm(request: Request) -> JSONResponse:
    stub = request.state.env.CLOCK.get_by_name(request.path_params["name"])
    ms = float(request.query_params.get("in", "0"))
    return JSONResponse({"due": await stub.set_in(ms)})


async def runs(request: Request) -> JSONResponse:
    stub = request.state.env.CLOCK.get_by_name(request.path_params["name"])
    return JSONResponse(await stub.runs())


app = Starlette(
    routes=[
        Route("/clock/{name}/alarm", set_alarm, methods=["POST"]),
        Route("/clock/{name}/runs", runs, methods=["GET"]),
    ]
)
