"""The vector index over HTTP: ``POST /upsert`` and ``POST /query`` take JSON bodies."""

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _index(request: Request) -> Any:
    return getattr(request.state.env, request.query_params.get("index", "VECTORIZE"))


async def upsert(request: Request) -> Response:
    done = await _index(request).upsert(await request.json())
    return JSONResponse({"mutation_id": done.mutation_id, "count": done.count})


async def query(request: Request) -> Response:
    body = await request.json()
    found = await _index(request).query(body.pop("vector"), **body)
    return JSONResponse(
        {"count": found.count, "matches": [[m.id, m.score, m.metadata] for m in found.matches]}
    )


app = Starlette(
    routes=[Route("/upsert", upsert, methods=["POST"]), Route("/query", query, methods=["POST"])]
)
