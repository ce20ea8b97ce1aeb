"""The seed backend: database, blob store and a chat room object behind one env."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import websockets

from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from tests.cluster import RAYDO


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    return _migrated(app_copy)


def _migrated(app_copy: Callable[[str], Path]) -> Path:
    folder = app_copy("seed-backend")
    done = subprocess.run(
        [str(RAYDO), "db", "migrations", "apply", "DB", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "0001_create_users.sql" in done.stdout + done.stderr
    return folder


async def test_users_files_and_rooms_route_for_route(app: TestApp) -> None:
    missing = await app.http.get("/users/1")
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})
    made = await app.http.post("/users", json={"name": "Ada", "email": "ada@example.com"})
    assert made.status_code == 201
    user = (await app.http.get(f"/users/{made.json()['id']}")).json()
    assert (user["name"], user["email"]) == ("Ada", "ada@example.com")
    taken = await app.http.post("/users", json={"name": "A", "email": "ada@example.com"})
    assert taken.status_code == 409

    body = os.urandom(300_000)
    stored = await app.http.post(
        "/files/report.bin", content=body, headers={"content-type": "application/pdf"}
    )
    assert stored.status_code == 201
    assert stored.json()["size"] == len(body)
    fetched = await app.http.get("/files/report.bin")
    assert fetched.status_code == 200
    assert fetched.content == body
    assert fetched.headers["content-type"] == "application/pdf"
    assert fetched.headers["etag"] == f'"{stored.json()["etag"]}"'
    assert (await app.http.get("/files/nothing-here")).json() == {"error": "not_found"}

    url = app.websocket_url("/room/lobby/ws")
    async with websockets.connect(url) as alice, websockets.connect(url) as bob:
        await alice.send("hello from alice")
        assert await asyncio.wait_for(bob.recv(), 10) == "hello from alice"
        await bob.send("hi alice")
        assert await asyncio.wait_for(alice.recv(), 10) == "hi alice"
        with pytest.raises(asyncio.TimeoutError):  # never back to the sender
            await asyncio.wait_for(alice.recv(), 0.3)


@pytest.mark.parametrize(
    "name",
    ["..%2F..%2Fetc%2Fpasswd", "%2Fabsolute", "a%00b", "k" * 2048],
)
async def test_hostile_file_names_stay_inside_the_bucket(
    app_copy: Callable[[str], Path], name: str
) -> None:
    folder = _migrated(app_copy)
    async with start_app(folder, storage=CONFIGURED_STORAGE) as app:
        before = {p for p in folder.parent.rglob("*")}
        reply = await app.http.post(f"/files/{name}", content=b"x")
        after = {p for p in folder.parent.rglob("*")}
        if reply.status_code == 201:
            assert (await app.http.get(f"/files/{name}")).content == b"x"
        else:
            assert reply.status_code in (400, 413), reply.text
        storage = folder / ".raydo"
        assert all(p.is_relative_to(storage) for p in after - before), after - before
        assert not (folder.parent / "etc").exists()


async def test_the_orm_route_gives_the_same_user_as_the_raw_one(app: TestApp) -> None:
    missing = await app.http.get("/orm/users/1")
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})
    made = await app.http.post("/users", json={"name": "Ada", "email": "ada@example.com"})
    user_id = made.json()["id"]
    through_orm = await app.http.get(f"/orm/users/{user_id}")
    assert through_orm.status_code == 200
    assert through_orm.json() == (await app.http.get(f"/users/{user_id}")).json() == made.json()
    assert set(through_orm.json()) == {"id", "name", "email", "created_at"}
    assert (await app.http.get("/orm/users/99999999999999999999")).status_code == 404
    assert (await app.http.get(f"/orm/users/{2**63 - 1}")).status_code == 404


async def test_bad_input_gets_clear_errors(app: TestApp) -> None:
    for body in (b"", b"nope", b"[]", b'{"name": 1, "email": 2}'):
        reply = await app.http.post("/users", content=body)
        assert reply.status_code == 400, body
    assert (await app.http.get("/users/99999999999999999999")).status_code == 404
    with pytest.raises(httpx.HTTPStatusError):
        (await app.http.get("/users/abc")).raise_for_status()
