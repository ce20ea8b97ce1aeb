"""Where the adapter's statements run: one small interface, two transports.

- :class:`D1Transport` sends each statement to the database binding (``env.DB``) as one call
  (its own transaction, committed when the call returns), and ``executemany`` as one
  ``batch`` (all its parameter sets or none).
- :class:`StorageTransport` runs them on an object's own SQLite (``ctx.storage.sql``), in the
  event's transaction; :class:`AsyncStorageTransport` is the same for an async engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from raydo.bindings.d1 import D1Database, D1Rows
from raydo.storage import ObjectStorage


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one ``execute`` (or ``executemany``) produced, as a cursor shows it."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int
    lastrowid: int


class SyncTransport(Protocol):
    def run(self, sql: str, params: tuple[Any, ...]) -> Outcome: ...

    def run_many(self, sql: str, param_sets: Sequence[tuple[Any, ...]]) -> Outcome: ...


class AsyncTransport(Protocol):
    async def run(self, sql: str, params: tuple[Any, ...]) -> Outcome: ...

    async def run_many(self, sql: str, param_sets: Sequence[tuple[Any, ...]]) -> Outcome: ...


def _rowcount(columns: list[str], written: int) -> int:
    # PEP 249: -1 where a count does not apply (a read); the rows changed otherwise.
    return written if written or not columns else -1


def _d1_outcome(found: D1Rows) -> Outcome:
    meta = found.meta
    return Outcome(
        found.columns,
        [tuple(row) for row in found.rows],
        _rowcount(found.columns, meta.rows_written),
        meta.last_row_id,
    )


class D1Transport:
    """Statements through the database binding (``env.DB``)."""

    __slots__ = ("database",)

    def __init__(self, database: D1Database) -> None:
        self.database = database

    async def run(self, sql: str, params: tuple[Any, ...]) -> Outcome:
        return _d1_outcome(await self.database.prepare(sql).bind(*params).rows())

    async def run_many(self, sql: str, param_sets: Sequence[tuple[Any, ...]]) -> Outcome:
        statement = self.database.prepare(sql)
        found = await self.database.batch_rows([statement.bind(*p) for p in param_sets])
        if not found:
            return Outcome([], [], 0, 0)
        return Outcome(
            [],
            [],
            sum(r.meta.rows_written for r in found),
            found[-1].meta.last_row_id,
        )


class StorageTransport:
    """Statements on an object's own SQLite (``ctx.storage.sql``), inside its event."""

    __slots__ = ("storage",)

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage

    def run(self, sql: str, params: tuple[Any, ...]) -> Outcome:
        cursor = self.storage.sql.exec(sql, *params)
        columns = list(cursor.column_names)
        return Outcome(
            columns,
            list(cursor.raw()),
            _rowcount(columns, cursor.rows_written),
            cursor.last_row_id,
        )

    def run_many(self, sql: str, param_sets: Sequence[tuple[Any, ...]]) -> Outcome:
        # All the sets or none, like a batch: a savepoint around them.
        written = last = 0
        with self.storage.transaction():
            for params in param_sets:
                cursor = self.storage.sql.exec(sql, *params)
                written += cursor.rows_written
                last = cursor.last_row_id
        return Outcome([], [], written, last)


class AsyncStorageTransport:
    """:class:`StorageTransport` for an async engine (the calls themselves stay sync)."""

    __slots__ = ("sync",)

    def __init__(self, storage: ObjectStorage) -> None:
        self.sync = StorageTransport(storage)

    async def run(self, sql: str, params: tuple[Any, ...]) -> Outcome:
        return self.sync.run(sql, params)

    async def run_many(self, sql: str, param_sets: Sequence[tuple[Any, ...]]) -> Outcome:
        return self.sync.run_many(sql, param_sets)
