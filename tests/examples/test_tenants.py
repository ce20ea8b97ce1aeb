"""The tenants example: each x-tenant-id gets its own object and its own SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from raydo.gateway.testing import TestApp


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("tenants")


async def test_each_tenant_sees_only_its_own_data(app: TestApp) -> None:
    acme, globex = {"x-tenant-id": "acme"}, {"x-tenant-id": "globex"}
    made = await app.http.post("/projects", json={"name": "launch"}, headers=acme)
    assert made.status_code == 201
    project = made.json()["id"]
    task = await app.http.post(
        f"/projects/{project}/tasks", json={"title": "ship it"}, headers=acme
    )
    assert task.status_code == 201
    assert task.json()["title"] == "ship it"

    # Same ids, other tenant: nothing there, and nothing of it can be reached.
    assert (await app.http.get("/projects", headers=globex)).json() == []
    refused = await app.http.get(f"/projects/{project}/tasks", headers=globex)
    assert refused.status_code == 404
    assert refused.json()["error"] == "not_found"
    done = await app.http.post(f"/tasks/{task.json()['id']}/done", headers=globex)
    assert done.status_code == 404
    gone = await app.http.delete(f"/projects/{project}", headers=globex)
    assert gone.status_code == 404

    # Globex's own project gets id 1 too, in its own database.
    other = await app.http.post("/projects", json={"name": "other"}, headers=globex)
    assert other.json()["id"] == project

    listed = (await app.http.get("/projects", headers=acme)).json()
    assert [(p["name"], p["open"], p["done"]) for p in listed] == [("launch", 1, 0)]
    assert (await app.http.post(f"/tasks/{task.json()['id']}/done", headers=acme)).json()[
        "done"
    ] == 1
    listed = (await app.http.get("/projects", headers=acme)).json()
    assert [(p["open"], p["done"]) for p in listed] == [(0, 1)]

    # Two tenants, two files, each holding only its own rows.
    ids = await app.list_ids("TENANT")
    assert len(ids) == 2
    assert await app.sql("TENANT", "acme", "SELECT name FROM projects") == [{"name": "launch"}]
    assert await app.sql("TENANT", "globex", "SELECT name FROM projects") == [{"name": "other"}]

    deleted = await app.http.delete(f"/projects/{project}", headers=acme)
    assert deleted.status_code == 204
    assert await app.sql("TENANT", "acme", "SELECT count(*) AS n FROM tasks") == [{"n": 0}]


async def test_the_schema_survives_eviction(app: TestApp) -> None:
    headers = {"x-tenant-id": "initech"}
    await app.http.post("/projects", json={"name": "tps"}, headers=headers)
    await app.evict("TENANT", "initech")
    again = await app.http.post("/projects", json={"name": "tps"}, headers=headers)
    assert again.json()["id"] == 1  # the same project: created once, found again
    assert len((await app.http.get("/projects", headers=headers)).json()) == 1


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("GET", "/projects", {}, None, 400),
        ("GET", "/projects", {"x-tenant-id": ""}, None, 400),
        ("GET", "/projects", {"x-tenant-id": "../../etc"}, None, 400),
        ("GET", "/projects", {"x-tenant-id": "a" * 65}, None, 400),
        ("GET", "/projects", {"x-tenant-id": "ten ant"}, None, 400),
        ("POST", "/projects", {"x-tenant-id": "t"}, b"not json", 400),
        ("POST", "/projects", {"x-tenant-id": "t"}, b"[1, 2]", 400),
        ("POST", "/projects", {"x-tenant-id": "t"}, b'{"name": 5}', 400),
        ("POST", "/projects", {"x-tenant-id": "t"}, b'{"name": "   "}', 400),
        ("POST", "/projects", {"x-tenant-id": "t"}, b'{"name": "' + b"x" * 201 + b'"}', 400),
        ("POST", "/projects", {"x-tenant-id": "t"}, b"\xff\xfe", 400),
        ("GET", "/projects/99999999999999999999/tasks", {"x-tenant-id": "t"}, None, 400),
        ("GET", "/projects/-1/tasks", {"x-tenant-id": "t"}, None, 404),
        ("POST", "/tasks/7/done", {"x-tenant-id": "t"}, None, 404),
    ],
)
async def test_bad_input_gets_a_clear_answer(
    app: TestApp, method: str, path: str, headers: dict[str, str], body: bytes | None, status: int
) -> None:
    reply = await app.http.request(method, path, headers=headers, content=body)
    assert reply.status_code == status, reply.text
    if status == 400:
        assert reply.json()["error"] == "bad_request"
    # Nothing bad input did created a tenant's storage.
    assert await app.list_ids("TENANT") in ([], [str(app.env.TENANT.id_from_name("t"))])
