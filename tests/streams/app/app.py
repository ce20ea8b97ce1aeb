"""Every request under /o/<name>/ goes to that object's fetch, bodies streaming both ways."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def forward(request: Request) -> Response:
    stub = request.state.env.STREAMER.get_by_name(request.path_params["name"])
    response: Response = await stub.fetch(request)
    return response


async def read_here(request: Request) -> Response:
    """The app reading a body itself: held to request_bytes."""
    return Response(str(len(await request.body())))


app = Starlette(
    routes=[
        Route("/o/{name}/{rest:path}", forward, methods=["GET", "POST", "PUT"]),
        Route("/here", read_here, methods=["POST"]),
    ]
)
