"""The raydo-native twin of ``bench/apps/workers_sdk``: the same two routes."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from raydo import DurableObject


class Counter(DurableObject):
    async def increment(self) -> int:
        n: int = self.ctx.storage.get("n", 0) + 1
        self.ctx.storage.put("n", n)
        return n


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello World!")


async def increment(request: Request) -> JSONResponse:
    stub = request.state.env.COUNTER.get_by_name(request.path_params["name"])
    return JSONResponse({"value": await stub.increment()})


app = Starlette(
    routes=[Route("/hello", hello), Route("/counter/{name}/increment", increment, methods=["POST"])]
)
