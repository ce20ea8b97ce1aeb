"""The database binding over HTTP, for tests: each route drives one D1 call from JSON.

Bytes travel as {"$bytes": base64} both ways (JSON has no bytes); ints stay exact (Python's
json reads and writes integers of any size).
"""

import base64
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from raydo.bindings.d1 import D1Error


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$bytes" in value:
        return base64.b64decode(value["$bytes"])
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _error(exc: D1Error) -> JSONResponse:
    body = {"error": exc.message, "code": exc.code, "limit": exc.limit, "statement": exc.statement}
    return JSONResponse(body, status_code=400)


def _statement(db: Any, item: dict[str, Any]) -> Any:
    return db.prepare(item["sql"]).bind(*[_decode(p) for p in item.get("params", [])])


async def query(request: Request) -> JSONResponse:
    body = await request.json()
    db = getattr(request.state.env, body.get("db", "DB"))
    try:
        statement = _statement(db, body)
    except (TypeError, ValueError) as exc:
        return JSONResponse({"error": str(exc), "type": type(exc).__name__}, status_code=422)
    mode = body.get("mode", "all")
    try:
        if mode == "first":
            value: Any = await statement.first(body.get("column"))
        elif mode == "raw":
            value = await statement.raw(column_names=body.get("column_names", False))
        elif mode == "run":
            value = (await statement.run()).to_dict()
        else:
            value = (await statement.all()).to_dict()
    except D1Error as exc:
        return _error(exc)
    return JSONResponse({"value": _encode(value)})


async def batch(request: Request) -> JSONResponse:
    body = await request.json()
    db = request.state.env.DB
    try:
        results = await db.batch([_statement(db, item) for item in body["statements"]])
    except D1Error as exc:
        return _error(exc)
    return JSONResponse({"value": [_encode(r.to_dict()) for r in results]})


async def exec_sql(request: Request) -> JSONResponse:
    db = request.state.env.DB
    try:
        result = await db.exec((await request.body()).decode())
    except D1Error as exc:
        return _error(exc)
    return JSONResponse({"count": result.count, "duration": result.duration})


async def add_user(request: Request) -> JSONResponse:
    stub = request.state.env.WRITER.get_by_name("w")
    return JSONResponse({"id": await stub.add(request.path_params["name"])})


app = Starlette(
    routes=[
        Route("/query", query, methods=["POST"]),
        Route("/batch", batch, methods=["POST"]),
        Route("/exec", exec_sql, methods=["POST"]),
        Route("/users/{name}", add_user, methods=["POST"]),
    ]
)
