"""The assets benchmark's app: the folder is written by ``bench/assets.py``; the app's one
route answers a short text, the cost of a request that reaches a handler."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello from the app\n")


app = Starlette(routes=[Route("/hello", hello)])
