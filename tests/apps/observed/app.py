from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def relay(request: Request) -> JSONResponse:
    stub = request.state.env.NOISY.get_by_name(request.path_params["name"])
    return JSONResponse({"said": await stub.relay(request.path_params["peer"], "hello")})


app = Starlette(routes=[Route("/relay/{name}/{peer}", relay, methods=["POST"])])
