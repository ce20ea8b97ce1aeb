"""Routes that reach every binding: ``/room/<name>`` (fetch, RPC, WebSocket), ``/db``, ``/kv``,
``/files``, ``/jobs``. Every handler reads its input defensively: the fuzzing tests send it
anything, and a correct app answers 4xx to what it cannot use."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from raydo.storage.blobs import BlobError


def env(request: Request) -> Any:
    return request.state.env


def key_of(request: Request) -> str:
    key = request.query_params.get("key", "k")
    if not key or len(key) > 200:
        raise BlobError("the key is 1 to 200 characters")
    return key


async def room(request: Request) -> Response:
    stub = env(request).ROOM.get_by_name(request.path_params["name"][:100])
    if request.method == "POST":
        return JSONResponse(
            {"notes": await stub.touch((await request.body())[:100].decode(errors="replace"))}
        )
    answer: Response = await stub.fetch(request)
    return answer


async def room_socket(websocket: WebSocket) -> None:
    await websocket.state.env.ROOM.get_by_name(websocket.path_params["name"][:100]).fetch(websocket)


async def db(request: Request) -> Response:
    database = env(request).DB
    await database.exec("CREATE TABLE IF NOT EXISTS t (v TEXT)")
    if request.method == "POST":
        await (
            database.prepare("INSERT INTO t VALUES (?)")
            .bind((await request.body())[:100].decode(errors="replace"))
            .run()
        )
    row = await database.prepare("SELECT count(*) AS n FROM t").first()
    return JSONResponse(row)


async def kv(request: Request) -> Response:
    namespace = env(request).CONFIG
    key = key_of(request)
    if request.method == "PUT":
        await namespace.put(key, request.stream())
        return Response(status_code=204)
    value = await namespace.get(key, "bytes")
    return Response(value or b"", status_code=200 if value is not None else 404)


async def files(request: Request) -> Response:
    bucket = env(request).FILES
    key = key_of(request)
    if request.method == "PUT":
        await bucket.put(key, request.stream(), http_metadata={"content_type": "text/plain"})
        return Response(status_code=204)
    if request.method == "POST":  # a presigned URL for the key
        method = request.query_params.get("method", "GET")
        return JSONResponse({"url": bucket.create_presigned_url(key, method, 600)})
    found = await bucket.get(key)
    if found is None:
        return Response(status_code=404)
    return Response(await found.read(), media_type="application/octet-stream")


async def jobs(request: Request) -> Response:
    await env(request).JOBS.send((await request.body())[:100].decode(errors="replace"))
    return Response(status_code=202)


async def bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "bad_request", "message": str(exc)[:200]}, status_code=400)


app = Starlette(
    routes=[
        Route("/room/{name}", room, methods=["GET", "POST", "PUT"]),
        WebSocketRoute("/room/{name}/ws", room_socket),
        Route("/db", db, methods=["GET", "POST"]),
        Route("/kv", kv, methods=["GET", "PUT"]),
        Route("/files", files, methods=["GET", "PUT", "POST"]),
        Route("/jobs", jobs, methods=["POST"]),
    ],
    exception_handlers={
        BlobError: bad_request,
        ValueError: bad_request,
        ClientDisconnect: bad_request,  # nobody reads it, but nothing is logged as a failure
    },
)
