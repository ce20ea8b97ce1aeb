from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def read(request: Request) -> JSONResponse:
    return JSONResponse(await request.state.env.READER.get_by_name("r").read())


app = Starlette(routes=[Route("/read", read)])
