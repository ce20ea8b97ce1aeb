"""The object behind a database binding: one per ``database_name``, in the internal binding
``_D1``.

Every call (a statement, a batch, an ``exec``) is one event of the object, so the database has
exactly one writer, whichever gateway process sent the call, and each call is one SQLite
transaction, committed before its reply leaves (the output gate). User SQL runs through the
object's own ``ctx.storage.sql``, so it gets the same authorizer (no ``_raydo_*`` tables, no
BEGIN/COMMIT, no ATTACH), limits and plain SQLite file as any object's SQL.

An ordinary SQL error is not raised: raising in an event resets the object. The call's writes
are rolled back instead, and the error travels back as a value that the client
(:mod:`bindings.d1._client`) raises as :class:`~bindings.d1.D1Error`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from raydo.actors import PlatformObject
from raydo.storage import LimitExceeded, Limits, StorageError
from raydo.storage.sql import checked_params, checked_query, split_statements, strip_comments

#: Statement shapes a call may ask for: every row, or only the first (``first()``).
ALL_ROWS = -1


class DatabaseObject(PlatformObject):
    """One database: runs the SQL its binding's clients send, one call at a time."""

    _size: int | None = None  # the database's size after the last call that wrote

    async def query(self, statements: list[Any]) -> dict[str, Any]:
        """Run ``statements`` in order, all in one transaction, and return their results.

        Each statement is ``[sql, params, max_rows]`` (``max_rows`` is ``-1`` for every row).
        The reply is ``{"results": [[columns, rows, meta], ...]}``, or, when a statement
        fails, ``{"error": {...}}`` with every statement of the call rolled back.
        """
        return self._answer(statements)

    def _answer(self, statements: list[Any]) -> dict[str, Any]:
        """:meth:`query`'s reply; synchronous, so that :meth:`read_each` runs many reads
        without a coroutine each."""
        sql_exec = self.ctx.storage.sql.exec
        results: list[list[Any]] = []
        try:
            for sql, params, max_rows in statements:
                if ";" in sql and len([s for s in split_statements(sql) if strip_comments(s)]) > 1:
                    raise StorageError(
                        "a prepared statement must contain only one SQL statement;"
                        " use exec() to run several"
                    )
                started = time.perf_counter()
                cursor = sql_exec(sql, *params)
                duration = (time.perf_counter() - started) * 1000
                rows = list(cursor.raw())
                if max_rows != ALL_ROWS:
                    del rows[max_rows:]
                meta = {
                    "duration": duration,
                    "rows_read": cursor.rows_read,
                    "rows_written": cursor.rows_written,
                    "last_row_id": cursor.last_row_id,
                }
                results.append([cursor.column_names, rows, meta])
        except (StorageError, LimitExceeded) as exc:
            return {"error": self._failed(exc, len(results))}
        # Only a statement without result columns (DDL, a write) or one that wrote can change
        # the size: calls of plain reads skip the two PRAGMAs that measure it.
        if self._size is None or any(not r[0] or r[2]["rows_written"] for r in results):
            self._size = self.core.size_bytes
        for result in results:
            result[2]["size_after"] = self._size
        if not self.core.dirty:
            # Answered without a transaction: SQLite prepared these statements before and
            # saw only reads. The client may send them in batches (read_each).
            return {"results": results, "read_only": True}
        return {"results": results}

    async def read_each(self, calls: list[Any]) -> dict[str, Any]:
        """Answer each of ``calls`` (each ``[sql, params, max_rows]``, a statement the client
        saw answered without a transaction) as :meth:`query` of it alone would, where it can.

        The calls of one statement run together (:meth:`StorageCore.run_known_reads`). The
        reply is ``{"columns": [names, ...], "answers": [...], "size_after": bytes}``, an
        answer ``[k, rows, rows_read, last_row_id, ms]`` with ``k`` indexing ``columns``, or
        None for a call this batch does not answer, which the client sends alone: one that
        is malformed or fails (its own call says why), one whose statement is no longer
        known to only read (the object may have been evicted since), and every one after
        the answers fill half a message."""
        core = self.core
        limits = core.limits
        budget = limits.message_bytes // 2
        answers: list[list[Any] | None] = [None] * len(calls)
        columns: list[list[str]] = []
        for sql, indexes, params in _by_statement(calls, limits):
            if budget <= 0:
                break
            found = core.run_known_reads(sql, params, [calls[i][2] for i in indexes], budget)
            if found is None:
                continue
            names, results = found
            k = len(columns)
            columns.append(names)
            for i, (rows, rows_read, last_row_id, ms, size) in zip(indexes, results, strict=False):
                answers[i] = [k, rows, rows_read, last_row_id, ms]
                budget -= size + 64
        if self._size is None:
            self._size = core.size_bytes
        return {"columns": columns, "answers": answers, "size_after": self._size}

    async def exec(self, sql: str) -> dict[str, Any]:
        """Run the statements of ``sql`` (no parameters) in one transaction.

        The reply is ``{"count": statements run, "duration": ms}`` or ``{"error": {...}}``,
        with every statement rolled back.
        """
        statements = [s for s in split_statements(sql) if strip_comments(s)]
        storage = self.ctx.storage
        started = time.perf_counter()
        done = 0
        try:
            if not statements:
                raise StorageError("exec() was given no SQL statement")
            for statement in statements:
                storage.sql.exec(statement)
                done += 1
        except (StorageError, LimitExceeded) as exc:
            return {"error": self._failed(exc, done)}
        self._size = None
        return {"count": len(statements), "duration": (time.perf_counter() - started) * 1000}

    def _failed(self, exc: Exception, index: int) -> dict[str, Any]:
        """Roll back the whole call and describe why, for the client to raise."""
        # The call is the whole event, so the event's rollback is exactly the call's. It also
        # recovers from errors after which SQLite itself ended the transaction (INSERT OR
        # ROLLBACK, a full disk), which would otherwise fail the event and reset the object.
        self.core.rollback()
        return {
            "message": str(exc),
            "code": getattr(exc, "sqlite_errorname", None),
            "limit": getattr(exc, "limit", None),
            "statement": index,
        }


def _by_statement(
    calls: list[Any], limits: Limits
) -> Iterator[tuple[str, list[int], list[tuple[Any, ...]]]]:
    """The well-formed calls of :meth:`DatabaseObject.read_each` grouped by their one
    statement, in order of first appearance: the statement, the calls' indexes and their
    checked parameters. A malformed call, or one the SQL face's checks refuse, is left out."""
    groups: dict[str, tuple[str, list[int], list[tuple[Any, ...]]]] = {}
    for i, call in enumerate(calls):
        try:
            sql, params, max_rows = call
            if not isinstance(sql, str) or not isinstance(params, list):
                continue
            if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < -1:
                continue
            group = groups.get(sql)
            if group is None:
                statements = checked_query(sql, limits)
                if len(statements) != 1:
                    continue  # several: query() says why, alone
                group = groups[sql] = (statements[0], [], [])
            checked = checked_params(params, limits)
        except (TypeError, ValueError, StorageError, LimitExceeded):
            continue
        group[1].append(i)
        group[2].append(checked)
    return iter(groups.values())
