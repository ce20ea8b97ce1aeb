"""The ORM and SQLModel over the database binding, through the test app's routes
(``tests/apps/orm/app.py``) on real uvicorn: relationships (one-to-many, selectinload,
cascades), types, errors, and what a session's commit means on D1."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from raydo.gateway.testing import TestApp, start_app
from tests.placements import Placement

AppCopy = Callable[[str], Path]


@pytest.fixture
def app_dir(app_copy: AppCopy) -> Path:
    return app_copy("orm")


@pytest.fixture
async def app(app_dir: Path, placement: Placement) -> AsyncIterator[TestApp]:
    async with start_app(app_dir, **placement) as app:
        yield app


async def post(app: TestApp, path: str, body: dict[str, Any], status: int = 201) -> Any:
    reply = await app.http.post(path, json=body)
    assert reply.status_code == status, reply.text
    return reply.json()


async def get(app: TestApp, path: str, status: int = 200) -> Any:
    reply = await app.http.get(path)
    assert reply.status_code == status, reply.text
    return reply.json()


async def test_an_author_and_books_round_trip_through_a_relationship(app: TestApp) -> None:
    cover = bytes(range(256))
    books = [
        {"title": "Notes", "copies": 2**63 - 1, "cover": base64.b64encode(cover).decode()},
        {"title": "Engine", "copies": -(2**63)},
    ]
    body = {"name": "Ada", "born": "1815-12-10T06:30:00.000001", "books": books}
    created = await post(app, "/authors", body)
    await post(app, f"/authors/{created['id']}/books", {"title": "Letters"})
    assert await get(app, f"/authors/{created['id']}") == {
        "id": created["id"],
        "name": "Ada",
        "born": "1815-12-10T06:30:00.000001",
        "books": [
            {"title": "Notes", "copies": 2**63 - 1, "cover": base64.b64encode(cover).decode()},
            {"title": "Engine", "copies": -(2**63), "cover": None},
            {"title": "Letters", "copies": 0, "cover": None},
        ],
    }
    await post(app, "/authors", {"name": "Babbage", "books": [{"title": "Passages"}]})
    listed = await get(app, "/authors")
    assert [(a["name"], len(a["books"])) for a in listed] == [("Ada", 3), ("Babbage", 1)]
    # The rows are D1's, where raw SQL sees them.
    db = app.env.DB
    rows = await db.prepare("SELECT title, author_id FROM books ORDER BY id").raw()
    assert rows == [["Notes", 1], ["Engine", 1], ["Letters", 1], ["Passages", 2]]


async def test_deleting_an_author_cascades_to_its_books(app: TestApp) -> None:
    created = await post(
        app, "/authors", {"name": "Ada", "books": [{"title": "a"}, {"title": "b"}]}
    )
    other = await post(app, "/authors", {"name": "Bob", "books": [{"title": "c"}]})
    assert (await app.http.delete(f"/authors/{created['id']}")).status_code == 200
    await get(app, f"/authors/{created['id']}", status=404)
    assert [b["title"] for b in (await get(app, f"/authors/{other['id']}"))["books"]] == ["c"]
    assert await app.env.DB.prepare("SELECT count(*) AS n FROM books").first("n") == 1


async def test_a_duplicate_is_an_integrity_error_over_d1_error(app: TestApp) -> None:
    await post(app, "/authors", {"name": "Ada"})
    assert await post(app, "/authors", {"name": "Ada"}, status=409) == {
        "error": "IntegrityError",
        "driver": "IntegrityError",
        "raydo": "D1Error",
        "code": "SQLITE_CONSTRAINT_UNIQUE",
    }


async def test_a_flush_that_fails_midway_keeps_the_statements_before_it(app: TestApp) -> None:
    # D1's rule, as the README says: each statement of a flush is its own call (and an ORM
    # flush inserts its new rows one by one). The author and the first book stand; the
    # second book failed (NOT NULL) and left nothing.
    body = {"name": "Half", "books": [{"title": "kept"}, {"title": None}]}
    assert (await post(app, "/authors", body, status=409))["code"] == "SQLITE_CONSTRAINT_NOTNULL"
    authors = await get(app, "/authors")
    assert [(a["name"], [b["title"] for b in a["books"]]) for a in authors] == [("Half", ["kept"])]


async def test_sqlmodel_models_with_a_relationship(app: TestApp) -> None:
    first = await post(app, "/heroes", {"name": "Deadpond", "team": "Z-Force"})
    second = await post(app, "/heroes", {"name": "Rusty-Man", "age": 48, "team": "Z-Force"})
    await post(app, "/heroes", {"name": "Spider-Boy", "team": "Preventers"})
    assert first["team_id"] == second["team_id"]
    assert await get(app, "/teams/Z-Force/heroes") == [
        {"id": first["id"], "name": "Deadpond", "age": None},
        {"id": second["id"], "name": "Rusty-Man", "age": 48},
    ]
    await get(app, "/teams/nobody/heroes", status=404)
