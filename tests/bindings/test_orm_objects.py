"""SQLAlchemy inside an object (``tests/apps/orm/objects.py``): a sync engine and an async one
on ``ctx.storage``, in the event's transaction, on real hosts (in process and on Ray)."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from raydo import ObjectError
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


async def test_the_orm_writes_and_reads_the_objects_own_sqlite(app: TestApp, name: str) -> None:
    notes = app.env.NOTES.get_by_name(name)
    at = datetime.datetime(2026, 12, 4, 18, 0, 0, 250000)
    assert await notes.add("first", at) == 1
    assert await notes.add_async("second") == 2
    assert await notes.texts() == ["first", "second"]
    assert await notes.texts_async() == ["first", "second"]
    assert (await notes.notes())[0] == {"id": 1, "text": "first", "at": at}
    # The rows are in the object's own file, as SQLite stores them; another object has none.
    stored = await app.sql("NOTES", name, "SELECT text, at FROM notes ORDER BY id")
    assert stored == [
        {"text": "first", "at": "2026-12-04 18:00:00.250000"},
        {"text": "second", "at": None},
    ]
    assert await app.env.NOTES.get_by_name(name + "-other").texts() == []


async def test_a_failed_event_rolls_back_what_its_session_committed(
    app: TestApp, name: str
) -> None:
    notes = app.env.NOTES.get_by_name(name)
    await notes.add("kept")
    with pytest.raises(ObjectError, match="the event fails"):
        await notes.add_then_fail("dropped")
    assert await app.env.NOTES.get_by_name(name).texts() == ["kept"]


async def test_executemany_inside_an_object_is_all_or_nothing(app: TestApp, name: str) -> None:
    notes = app.env.NOTES.get_by_name(name)
    assert await notes.add_many(["a", "b", "c"]) == 3
    with pytest.raises(ObjectError, match="IntegrityError"):
        await notes.add_many(["d", "a"])
    assert await app.env.NOTES.get_by_name(name).texts() == ["a", "b", "c"]


async def test_a_caught_integrity_error_wraps_sqlites_and_the_event_goes_on(
    app: TestApp, name: str
) -> None:
    outcome = await app.env.NOTES.get_by_name(name).add_duplicate("twice")
    assert outcome == {
        "error": "IntegrityError",
        "orig": "raydo.bindings.orm.dbapi.IntegrityError",
        "raydo": "SqlError",
        "message": "UNIQUE constraint failed: notes.text",
        "count": 1,
    }


async def test_what_object_sql_may_not_do_is_refused_through_the_orm_too(
    app: TestApp, name: str
) -> None:
    notes = app.env.NOTES.get_by_name(name)
    assert (await notes.refused("COMMIT")).startswith("OperationalError: ")
    assert "_raydo_" in await notes.refused("SELECT * FROM _raydo_kv")
    assert (await notes.refused("SELECT 1")) == "ran"


async def test_bad_input_inside_an_object_gets_the_same_clear_errors(
    app: TestApp, name: str
) -> None:
    found = await app.env.NOTES.get_by_name(name).bad_input()
    assert [f.split(":")[0] for f in found] == [
        "ProgrammingError",
        "ProgrammingError",
        "DataError",
        "DataError",
        "DataError",
        "OperationalError",
    ]
    assert "parameter 1 has type object" in found[0]
    assert "64-bit" in found[2]
    assert "value_bytes" in found[3]
    assert "Unicode" in found[4]
    assert "SAVEPOINT" in found[5] or "transaction" in found[5], found[5]
    assert await app.sql("NOTES", name, "SELECT count(*) AS n FROM notes") == [{"n": 0}]
