"""The disk test app: POST /notes/{name}/{key}?size= writes a note; PUT and GET /blob/{key}."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def write(request: Request) -> JSONResponse:
    notes = request.state.env.NOTES.get_by_name(request.path_params["name"])
    size = await notes.write(request.path_params["key"], int(request.query_params["size"]))
    return JSONResponse({"wrote": size})


async def put_blob(request: Request) -> JSONResponse:
    stored = await request.state.env.FILES.put(request.path_params["key"], request.stream())
    return JSONResponse({"size": stored.size})


async def get_blob(request: Request) -> Response:
    found = await request.state.env.FILES.get(request.path_params["key"])
    if found is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return Response(await found.read())


app = Starlette(
    routes=[
        Route("/notes/{name}/{key}", write, methods=["POST"]),
        Route("/blob/{key}", put_blob, methods=["PUT"]),
        Route("/blob/{key}", get_blob, methods=["GET"]),
    ]
)
