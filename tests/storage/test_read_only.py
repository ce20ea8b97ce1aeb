"""Statements that only read run without a transaction (``StorageCore.run_user_sql``): once
SQLite prepared a statement and its authorizer saw nothing but reads, it is answered with
nothing begun or committed; anything that may write, however it starts, goes the write path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from raydo.storage import SqlError, StorageCore, TransactionError


def make_core(path: Path, **kwargs: object) -> StorageCore:
    core = StorageCore(path, **kwargs)  # type: ignore[arg-type]
    core.internal(f"{core.tag}CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    core.internal(f"{core.tag}INSERT INTO t VALUES (1, 'a')")
    return core


def run(core: StorageCore, sql: str, *params: object) -> list[tuple[object, ...]]:
    return core.run_user_sql([sql], params)[1]


def test_a_read_is_answered_without_a_transaction_once_sqlite_saw_it_read(
    tmp_path: Path,
) -> None:
    core = make_core(tmp_path / "o.sqlite")
    select = "SELECT v FROM t WHERE id = ?"
    assert run(core, select, 1) == [("a",)]
    assert core.dirty  # the first time, it ran in the event's transaction
    core.commit()
    for _ in range(3):
        assert run(core, select, 1) == [("a",)]
        assert not core.dirty  # nothing begun, nothing to commit
    # Joined, when a write of the event opened the transaction: it sees that write.
    run(core, "INSERT INTO t VALUES (2, 'b')")
    assert run(core, select, 2) == [("b",)] and core.dirty
    core.rollback()
    assert run(core, select, 2) == [] and not core.dirty
    core.close()


@pytest.mark.parametrize(
    "statement",
    [
        "WITH n(x) AS (SELECT 10) INSERT INTO t (id, v) SELECT x + (SELECT count(*) FROM t), 'w'"
        " FROM n",
        "INSERT INTO t (v) VALUES ('r') RETURNING id",
        "UPDATE t SET v = v || '+' WHERE id = 1 RETURNING v",
        "PRAGMA foreign_keys",  # a PRAGMA outside a transaction may change the connection
    ],
)
def test_statements_that_may_write_always_take_the_write_path(
    tmp_path: Path, statement: str
) -> None:
    core = make_core(tmp_path / "o.sqlite")
    before = run(core, "SELECT count(*), group_concat(v) FROM t")
    core.commit()
    for _ in range(3):
        run(core, statement)
        assert core.dirty  # in the event's transaction, every time
        core.rollback()  # ... so the rollback takes back what it wrote
    assert run(core, "SELECT count(*), group_concat(v) FROM t") == before
    core.close()


def test_reads_outside_events_are_refused_as_before(tmp_path: Path) -> None:
    core = make_core(tmp_path / "o.sqlite")
    select = "SELECT v FROM t"
    run(core, select)
    core.commit()
    core.in_turn = 0  # a host's core between events
    with pytest.raises(TransactionError, match="inside an event"):
        run(core, select)
    core.close()


def test_many_statements_keep_being_answered_right(tmp_path: Path) -> None:
    """More distinct statements than the core remembers: each is still answered, the ones
    forgotten through the write path again."""
    core = make_core(tmp_path / "o.sqlite")
    for _ in range(2):
        for n in range(600):
            assert run(core, f"SELECT v, {n} FROM t WHERE id = 1") == [("a", n)]
            core.commit()
    assert not core.dirty
    core.close()


async def test_a_read_still_waits_for_the_writes_before_it_to_be_durable(
    tmp_path: Path,
) -> None:
    """The output gate: a read answered without a transaction commits nothing, but its event's
    commit still asks the owner (the host's output gate) and returns what the owner says: a
    read after a write that is not durable yet waits for it, an allow_unconfirmed one too."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] = loop.create_future()
    asked: list[bool] = []

    def after_commit(wrote: bool) -> asyncio.Future[None] | None:
        asked.append(wrote)
        return None if pending.done() else pending  # a sync is running until it is set

    core = make_core(tmp_path / "o.sqlite", after_commit=after_commit)
    core.commit()
    select = "SELECT v FROM t WHERE id = 1"
    run(core, select)
    core.commit()
    with core.unconfirmed():
        run(core, "UPDATE t SET v = 'u' WHERE id = 1")
    assert core.commit() is None  # the unconfirmed write's own event does not wait
    assert run(core, select) == [("u",)] and not core.dirty
    assert core.commit() is pending  # the read that saw it does
    pending.set_result(None)
    assert run(core, select) == [("u",)]
    assert core.commit() is None
    assert asked[-3:] == [True, False, False]
    core.close()


def test_a_read_answered_without_a_transaction_follows_the_schema_and_fails_cleanly(
    tmp_path: Path,
) -> None:
    """The short way a known read takes still sees the schema as it is now (SQLite prepares
    the statement again after a change) and fails like any statement, leaving the core as it
    was: nothing begun, the next write and read answered right."""
    core = make_core(tmp_path / "o.sqlite")
    select = "SELECT * FROM t WHERE id = ?"
    run(core, select, 1)
    core.commit()
    assert core.run_user_sql([select], (1,))[:3] == (["id", "v"], [(1, "a")], 0)
    run(core, "ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 7")
    core.commit()
    names, rows, changed, _ = core.run_user_sql([select], (1,))
    assert (names, rows, changed) == (["id", "v", "w"], [(1, "a", 7)], 0) and not core.dirty
    with pytest.raises(SqlError, match="64-bit"):
        run(core, select, 2**63)
    assert not core.dirty
    run(core, "DROP TABLE t")
    core.commit()
    with pytest.raises(SqlError, match="no such table: t"):
        run(core, select, 1)
    assert not core.dirty
    run(core, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    run(core, "INSERT INTO t VALUES (1, 'b')")
    core.commit()
    assert run(core, select, 1) == [(1, "b")] and not core.dirty
    core.close()


def run_alone_rowid(core: StorageCore) -> int:
    """``last_row_id`` of the same read through :meth:`StorageCore.run_user_sql`."""
    return core.run_user_sql(["SELECT zeroblob(100000) AS b, id FROM t WHERE id >= ?"], (1,))[3]


def test_known_reads_run_together_hold_at_most_their_budget(tmp_path: Path) -> None:
    """However many runs a caller asks for, what ``run_known_reads`` keeps is bounded by its
    budget (a batch is RPC from any object of the app); each run is cut to its max_rows."""
    core = make_core(tmp_path / "o.sqlite")
    big = "SELECT zeroblob(100000) AS b, id FROM t WHERE id >= ?"
    assert run(core, big, 1)[0][1] == 1
    core.commit()
    found = core.run_known_reads(big, [(1,)] * 3000, [-1] * 3000, 250_000)
    assert found is not None
    names, answers = found
    assert names == ["b", "id"] and len(answers) == 3  # 100 KB each: past 250 KB at the third
    rows, rows_read, last_row_id, _, size = answers[0]
    assert rows == [(bytes(100000), 1)] and rows_read == 1 and last_row_id == run_alone_rowid(core)
    assert 100_000 < size < 100_100
    run(core, "INSERT INTO t VALUES (2, 'b')")
    core.commit()
    assert run(core, "SELECT v FROM t WHERE id >= ?", 1) == [("a",), ("b",)]
    core.commit()
    cut = core.run_known_reads("SELECT v FROM t WHERE id >= ?", [(1,), (1,)], [1, -1], 10_000)
    assert cut is not None
    assert [(a[0], a[1]) for a in cut[1]] == [([("a",)], 2), ([("a",), ("b",)], 2)]
    # Not a known read here (a transaction is open, or SQLite never saw it): None.
    assert core.run_known_reads("SELECT id FROM t", [()], [-1], 10_000) is None
    run(core, "INSERT INTO t VALUES (3, 'c')")
    assert core.run_known_reads(big, [(1,)], [-1], 10_000) is None
    core.rollback()
