"""Reads through ``env.DB`` and KV misses started together travel in one event of the
database's (or namespace's) object (``bindings/_batching.py``): each caller still gets its own
answer or its own error, writes are never batched, and a statement that may write is never
taken for a read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from raydo.bindings.d1 import D1Error
from raydo.gateway.cli_db import apply_migrations
from raydo.gateway.testing import TestApp

AppCopy = Callable[[str], Path]
SELECT = "SELECT id, name FROM users WHERE id = ?"


@pytest.fixture
def app_dir(app_copy: AppCopy) -> Path:
    folder = app_copy("d1")
    apply_migrations(folder, "DB")
    return folder


async def rpc_events(app: TestApp, binding: str) -> int:
    placement = app.gateway.placement
    assert placement is not None
    snapshots = await placement.host_metrics()
    return sum(s["events"]["rpc"] for s in snapshots if s["binding"] == binding)


async def learnt(statement: Any, *params: Any) -> Any:
    """Run ``statement`` twice: the database sees it only read the first time, and says so
    to the client the second (its answer then came without a transaction)."""
    await statement.bind(*params).first()
    return await statement.bind(*params).first()


async def fill(app: TestApp, rows: int) -> None:
    insert = app.env.DB.prepare("INSERT INTO users (id, name) VALUES (?, ?)")
    await app.env.DB.batch([insert.bind(i, f"u{i}") for i in range(1, rows + 1)])


async def test_reads_started_together_share_one_event_each_with_its_own_answer(
    app: TestApp,
) -> None:
    await fill(app, 50)
    read = app.env.DB.prepare(SELECT)
    assert await learnt(read, 1) == {"id": 1, "name": "u1"}
    before = await rpc_events(app, "_D1")
    rows = await asyncio.gather(*(read.bind(i).first() for i in range(1, 51)))
    assert rows == [{"id": i, "name": f"u{i}"} for i in range(1, 51)]
    assert await rpc_events(app, "_D1") - before < 5  # 50 reads, one or two events
    # all(), raw() and a missing row each get their own shape.
    got = await asyncio.gather(read.bind(2).all(), read.bind(3).raw(), read.bind(999).first())
    assert got[0].results == [{"id": 2, "name": "u2"}] and got[0].meta.rows_read == 1
    assert got[1] == [[3, "u3"]] and got[2] is None


async def test_a_read_in_a_batch_has_the_meta_of_the_same_read_alone(app: TestApp) -> None:
    await fill(app, 3)
    db = app.env.DB
    read = db.prepare("SELECT id, name AS n, name AS n FROM users WHERE id >= ? ORDER BY id")
    await learnt(read, 1)
    alone = await read.bind(2).all()
    together = await asyncio.gather(read.bind(2).all(), read.bind(1).raw(), read.bind(3).first())
    batched = together[0]
    assert batched.results == alone.results == [{"id": 2, "n": "u2"}, {"id": 3, "n": "u3"}]
    assert {**asdict(batched.meta), "duration": 0} == {**asdict(alone.meta), "duration": 0}
    assert batched.meta.rows_read == 2 and batched.meta.size_after > 0
    assert together[1] == [[1, "u1", "u1"], [2, "u2", "u2"], [3, "u3", "u3"]]
    assert together[2] == {"id": 3, "n": "u3"}  # duplicate columns: the last one wins
    rows = await read.bind(1).rows()
    assert rows.columns == ["id", "n", "n"]
    both = await asyncio.gather(read.bind(1).rows(), read.bind(2).rows())
    assert both[0].columns == both[1].columns and both[0].columns is not both[1].columns


async def test_a_hostile_read_batch_is_answered_where_it_can_be_and_resets_nothing(
    app: TestApp,
) -> None:
    """The object's ``read_each`` is called straight, as a peer on the wire could: every
    malformed call gets None (its caller would send it alone), the good one its answer, and
    the object keeps its state (an error raised in the event would have reset it)."""
    await fill(app, 2)
    db = app.env.DB
    await learnt(db.prepare(SELECT), 1)
    limits = app.config.limits
    stub = db._stub()
    reply = await stub.read_each(
        [
            [SELECT, [1], 1],
            "not a call",
            [SELECT, [1]],
            [SELECT, "1", 1],
            [SELECT, [1], "1"],
            [SELECT, [1], True],
            [SELECT, [1], -2],
            [7, [1], 1],
            [SELECT, [[1]], 1],
            [SELECT, [2**63], 1],
            [SELECT, ["x" * (limits.value_bytes + 1)], 1],
            [SELECT, [1] * (limits.sql_params + 1), 1],
            ["SELECT 1; SELECT 2", [], 1],
            ["SELECT * FROM _raydo_kv", [], 1],
            ["DELETE FROM users", [], 1],
            [SELECT + " -- not known yet", [2], 1],
            [SELECT, [2], -1],
        ]
    )
    answers = reply["answers"]
    assert answers[0][1:3] == [[[1, "u1"]], 1]
    assert answers[-1][1:3] == [[[2, "u2"]], 1]
    assert reply["columns"][answers[0][0]] == ["id", "name"]
    assert answers[1:-1] == [None] * 15
    assert await db.prepare("SELECT count(*) AS n FROM users").first("n") == 2


async def test_an_error_in_a_batch_is_its_own_callers_only(app: TestApp) -> None:
    await fill(app, 5)
    db = app.env.DB
    overflow = db.prepare("SELECT abs(?) AS a")
    assert await learnt(overflow, -5) == {"a": 5}
    read = db.prepare(SELECT)
    await learnt(read, 1)
    results = await asyncio.gather(
        read.bind(1).first(),
        overflow.bind(-(2**63)).first("a"),  # integer overflow, while it runs
        read.bind(2).first("name"),
        return_exceptions=True,
    )
    assert results[0] == {"id": 1, "name": "u1"} and results[2] == "u2"
    assert isinstance(results[1], D1Error) and "overflow" in str(results[1])


@pytest.mark.parametrize(
    "writer",
    [
        "WITH n(x) AS (SELECT ?) INSERT INTO users (name) SELECT 'w' || x FROM n",
        "INSERT INTO users (name) VALUES ('r' || ?) RETURNING id",
    ],
)
async def test_a_statement_that_writes_is_never_taken_for_a_read(app: TestApp, writer: str) -> None:
    db = app.env.DB
    statement = db.prepare(writer)
    for n in range(3):
        await statement.bind(n).run()
    # Started together, each is a call and a transaction of its own: all are written.
    await asyncio.gather(*(statement.bind(n).run() for n in range(3, 20)))
    assert await db.prepare("SELECT count(*) AS n FROM users").first("n") == 20
    # One failing (a UNIQUE name) takes back only itself.
    results = await asyncio.gather(
        statement.bind(0).run(), statement.bind(100).run(), return_exceptions=True
    )
    assert isinstance(results[0], D1Error) and "UNIQUE" in str(results[0])
    assert await db.prepare("SELECT count(*) AS n FROM users").first("n") == 21


async def test_reads_and_writes_started_together_all_land(app: TestApp) -> None:
    db = app.env.DB
    read = db.prepare("SELECT count(*) AS n FROM users")
    insert = db.prepare("INSERT INTO users (name) VALUES (?)")
    await learnt(read)
    calls: list[Any] = []
    for n in range(30):
        calls.append(insert.bind(f"n{n}").run())
        calls.append(read.first("n"))
    results = await asyncio.gather(*calls)
    counts = results[1::2]
    assert all(0 <= c <= 30 for c in counts)
    assert await read.first("n") == 30  # every write landed, each once


async def test_a_batch_that_does_not_fit_half_a_message_is_answered_in_parts(
    app: TestApp,
) -> None:
    """Together, the rows are far over ``message_bytes``; each alone fits."""
    db = app.env.DB
    limits = app.config.limits
    big = limits.value_bytes - 100
    count = limits.message_bytes // big + 2
    insert = db.prepare("INSERT INTO users (id, name) VALUES (?, ?)")
    for n in range(1, count + 1):
        await insert.bind(n, f"{n:04}" + "x" * (big - 4)).run()
    read = db.prepare("SELECT name FROM users WHERE id = ?")
    await learnt(read, 1)
    names = await asyncio.gather(*(read.bind(n).first("name") for n in range(1, count + 1)))
    assert [len(name) for name in names] == [big] * count


async def test_kv_misses_started_together_share_one_event(app_copy: AppCopy) -> None:
    from raydo.gateway.testing import start_app

    folder = app_copy("d1")
    with (folder / "raydo.toml").open("a") as config:
        config.write('\n[[kv_namespaces]]\nbinding = "KV"\ncache_bytes = 0\n')
    async with start_app(folder) as app:
        kv = app.env.KV
        await asyncio.gather(*(kv.put(f"k{n}", f"v{n}") for n in range(40)))
        before = await rpc_events(app, "_KV")
        values = await asyncio.gather(*(kv.get(f"k{n}") for n in range(40)), kv.get("nope"))
        assert values == [f"v{n}" for n in range(40)] + [None]
        assert await rpc_events(app, "_KV") - before < 5
        # A key written, then read at once, is read as written.
        await kv.put("k1", "new")
        assert await kv.get("k1") == "new"
