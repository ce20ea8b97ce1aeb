"""The assets test app: the Worker answers what no asset matches, and can serve an asset
itself through ``env.ASSETS``."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


async def through_binding(request: Request) -> Response:
    target = request.query_params.get("path", "/")
    answer: Response = await request.state.env.ASSETS.fetch(
        f"http://assets.local{target}" if target.startswith("/") else target
    )
    return answer


async def same_request(request: Request) -> Response:
    answer: Response = await request.state.env.ASSETS.fetch(request)
    return answer


async def worker(request: Request) -> Response:
    return PlainTextResponse(f"worker: {request.method} {request.url.path}")


app = Starlette(
    routes=[
        Route("/_binding", through_binding),
        Route("/mirror/{rest:path}", same_request),
        Route("/{rest:path}", worker, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    ]
)
