"""Every call of a key-value namespace over HTTP: ``?key=`` names the key, errors are 400."""

import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from raydo.storage import LimitExceeded


def _namespace(request: Request) -> Any:
    return getattr(request.state.env, request.query_params.get("ns", "CONFIG"))


def _number(request: Request, name: str) -> float | None:
    text = request.query_params.get(name)
    return None if text is None else float(text)


async def put(request: Request) -> Response:
    params = request.query_params
    metadata = params.get("metadata")
    try:
        await _namespace(request).put(
            params["key"],
            request.stream() if params.get("stream") else await request.body(),
            expiration=_number(request, "expiration"),
            expiration_ttl=_number(request, "ttl"),
            metadata=None if metadata is None else json.loads(metadata),
        )
    except LimitExceeded:
        raise  # the gateway answers 413 naming the limit
    except (TypeError, ValueError) as exc:
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, 400)
    return JSONResponse({"ok": True, "pid": os.getpid()})


async def get(request: Request) -> Response:
    params = request.query_params
    kind = params.get("type", "text")
    try:
        found = await _namespace(request).get_with_metadata(
            params["key"], kind, cache_ttl=_number(request, "cache_ttl")
        )
    except LimitExceeded:
        raise  # the gateway answers 413 naming the limit
    except (TypeError, ValueError) as exc:
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, 400)
    if kind == "bytes" and found.value is not None:
        return Response(found.value, headers={"x-cache": found.cache_status})
    return JSONResponse(
        {
            "value": found.value,
            "metadata": found.metadata,
            "cache_status": found.cache_status,
            "pid": os.getpid(),
        }
    )


async def delete(request: Request) -> Response:
    try:
        await _namespace(request).delete(request.query_params["key"])
    except LimitExceeded:
        raise  # the gateway answers 413 naming the limit
    except (TypeError, ValueError) as exc:
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, 400)
    return JSONResponse({"ok": True})


async def list_keys(request: Request) -> Response:
    params = request.query_params
    try:
        page = await _namespace(request).list(
            prefix=params.get("prefix", ""),
            cursor=params.get("cursor"),
            limit=int(params.get("limit", "1000")),
        )
    except LimitExceeded:
        raise  # the gateway answers 413 naming the limit
    except (TypeError, ValueError) as exc:
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, 400)
    return JSONResponse(
        {
            "keys": [
                {"name": k.name, "expiration": k.expiration, "metadata": k.metadata}
                for k in page.keys
            ],
            "list_complete": page.list_complete,
            "cursor": page.cursor,
        }
    )


async def object_put(request: Request) -> Response:
    stub = request.state.env.WRITER.get_by_name("w")
    await stub.put(request.query_params["key"], (await request.body()).decode())
    return JSONResponse({"ok": True})


async def object_get(request: Request) -> Response:
    stub = request.state.env.WRITER.get_by_name("w")
    return JSONResponse({"value": await stub.get(request.query_params["key"])})


app = Starlette(
    routes=[
        Route("/kv", get, methods=["GET"]),
        Route("/kv", put, methods=["PUT"]),
        Route("/kv", delete, methods=["DELETE"]),
        Route("/list", list_keys, methods=["GET"]),
        Route("/object", object_put, methods=["PUT"]),
        Route("/object", object_get, methods=["GET"]),
    ]
)
