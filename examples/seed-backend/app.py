"""The seed backend: one app, one ``env``, three kinds of binding.

* ``GET /users/{id}``: a user from the database (``env.DB``), or 404 ``{"error": "not_found"}``;
* ``GET /orm/users/{id}``: the same through SQLAlchemy's ORM (``users_orm.py``);
* ``POST /users`` ``{"name": ..., "email": ...}``: add one (201);
* ``POST /files/{name}``: store the request body in the blob store (``env.FILES``), streamed;
* ``GET /files/{name}``: stream it back with its content type, or 404;
* ``/room/{id}/ws``: a WebSocket to the ChatRoom object of that id (``env.ROOM``).

The ``users`` table comes from ``migrations/0001_create_users.sql``:
``raydo db migrations apply DB`` before the first start.
"""

from __future__ import annotations

import json

import users_orm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from raydo.bindings.d1 import D1Error
from raydo.storage.blobs import BlobError

NOT_FOUND = {"error": "not_found"}


async def get_user(request: Request) -> Response:
    user_id = request.path_params["id"]
    if user_id >= 2**63:
        return JSONResponse(NOT_FOUND, status_code=404)
    user = (
        await request.state.env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(user_id).first()
    )
    if user is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    return JSONResponse(user)


async def create_user(request: Request) -> Response:
    try:
        body = json.loads(await request.body())
        name, email = body["name"], body["email"]
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": 'send {"name": ..., "email": ...}'}, status_code=400)
    if not (isinstance(name, str) and isinstance(email, str) and name and "@" in email):
        return JSONResponse({"error": "name and email must be text"}, status_code=400)
    statement = request.state.env.DB.prepare(
        "INSERT INTO users (name, email) VALUES (?, ?) RETURNING *"
    )
    try:
        user = await statement.bind(name, email).first()
    except D1Error as exc:
        if "UNIQUE" in str(exc):
            return JSONResponse({"error": "email_taken"}, status_code=409)
        raise
    return JSONResponse(user, status_code=201)


async def put_file(request: Request) -> Response:
    name = request.path_params["name"]
    content_type = request.headers.get("content-type", "application/octet-stream")
    try:
        stored = await request.state.env.FILES.put(
            name, request.stream(), http_metadata={"content_type": content_type}
        )
    except BlobError as exc:  # a key or a content type the blob store refuses
        return JSONResponse({"error": "bad_request", "message": str(exc)}, status_code=400)
    return JSONResponse({"name": name, "size": stored.size, "etag": stored.etag}, 201)


async def get_file(request: Request) -> Response:
    try:
        found = await request.state.env.FILES.get(request.path_params["name"])
    except BlobError as exc:
        return JSONResponse({"error": "bad_request", "message": str(exc)}, status_code=400)
    if found is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    headers = {"etag": found.http_etag, "content-length": str(found.size)}
    found.write_http_metadata(headers)
    return StreamingResponse(found.body, headers=headers)


async def room(websocket: WebSocket) -> None:
    stub = websocket.state.env.ROOM.get_by_name(websocket.path_params["id"])
    await stub.fetch(websocket)


app = Starlette(
    routes=[
        Route("/users", create_user, methods=["POST"]),
        Route("/users/{id:int}", get_user, methods=["GET"]),
        Route("/orm/users/{id:int}", users_orm.get_user, methods=["GET"]),
        Route("/files/{name:path}", put_file, methods=["POST"]),
        Route("/files/{name:path}", get_file, methods=["GET"]),
        WebSocketRoute("/room/{id}/ws", room),
    ]
)
