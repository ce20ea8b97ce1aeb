"""A per-tenant SaaS API: the ``x-tenant-id`` header picks the Tenant object that answers.

Every route works only on the caller's tenant: the handler never sees another tenant's
object, because the only way to a Tenant is ``env.TENANT.get_by_name(<the header>)``.

* ``GET /projects``: the tenant's projects with open and done task counts;
* ``POST /projects`` ``{"name": ...}``: create (or get) a project;
* ``DELETE /projects/{id}``: delete a project and its tasks;
* ``GET /projects/{id}/tasks`` and ``POST /projects/{id}/tasks`` ``{"title": ...}``;
* ``POST /tasks/{id}/done``: mark a task done.

Bad input gets 400 with a reason; a missing project or task gets 404.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TEXT_CHARS = 200


class BadRequest(Exception):
    pass


def _tenant(request: Request) -> Any:
    tenant_id = request.headers.get("x-tenant-id")
    if tenant_id is None:
        raise BadRequest("the x-tenant-id header is required")
    if not _TENANT_ID.fullmatch(tenant_id):
        raise BadRequest("x-tenant-id takes 1 to 64 letters, digits, '.', '_' or '-'")
    return request.state.env.TENANT.get_by_name(tenant_id)


async def _text_field(request: Request, field: str) -> str:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body must be JSON") from None
    value = body.get(field) if isinstance(body, dict) else None
    if not isinstance(value, str) or not 0 < len(value.strip()) <= _TEXT_CHARS:
        raise BadRequest(f"{field!r} must be a string of 1 to {_TEXT_CHARS} characters")
    return value.strip()


def _row_id(request: Request) -> int:
    row_id: int = request.path_params["id"]
    if row_id >= 2**63:  # SQLite's integers are 64-bit
        raise BadRequest(f"{row_id} is not a valid id")
    return row_id


def _found(value: Any, what: str) -> Response:
    if value is None:
        return JSONResponse({"error": "not_found", "message": f"no such {what}"}, 404)
    return JSONResponse(value)


async def list_projects(request: Request) -> Response:
    return JSONResponse(await _tenant(request).projects())


async def create_project(request: Request) -> Response:
    tenant = _tenant(request)
    project = await tenant.create_project(await _text_field(request, "name"))
    return JSONResponse(project, status_code=201)


async def delete_project(request: Request) -> Response:
    deleted = await _tenant(request).delete_project(_row_id(request))
    return Response(status_code=204) if deleted else _found(None, "project")


async def list_tasks(request: Request) -> Response:
    return _found(await _tenant(request).tasks(_row_id(request)), "project")


async def add_task(request: Request) -> Response:
    tenant = _tenant(request)
    task = await tenant.add_task(_row_id(request), await _text_field(request, "title"))
    return _found(task, "project") if task is None else JSONResponse(task, status_code=201)


async def complete_task(request: Request) -> Response:
    return _found(await _tenant(request).complete(_row_id(request)), "task")


async def bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "bad_request", "message": str(exc)}, status_code=400)


app = Starlette(
    routes=[
        Route("/projects", list_projects, methods=["GET"]),
        Route("/projects", create_project, methods=["POST"]),
        Route("/projects/{id:int}", delete_project, methods=["DELETE"]),
        Route("/projects/{id:int}/tasks", list_tasks, methods=["GET"]),
        Route("/projects/{id:int}/tasks", add_task, methods=["POST"]),
        Route("/tasks/{id:int}/done", complete_task, methods=["POST"]),
    ],
    exception_handlers={BadRequest: bad_request},
)
