"""The SQL face of an object's storage: ``ctx.storage.sql.exec`` and its cursor.

User SQL runs on the object's own connection, inside the event's implicit transaction, under
an authorizer that keeps it away from raydo's own tables (``_raydo_*``), from transaction
control (use ``ctx.storage.transaction()``), from ATTACH and from PRAGMAs that could change
durability. Several ``;``-separated statements may be given; the parameters and the cursor
belong to the last one.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from ._core import StorageCore
from ._tables import TAG_START
from .errors import SqlError
from .limits import LimitExceeded, Limits


def split_statements(query: str) -> list[str]:
    """Split ``query`` at the semicolons that end complete statements (quotes and triggers kept)."""
    if ";" not in query:
        return [query]
    statements: list[str] = []
    start = i = 0
    n = len(query)
    while i < n:
        char = query[i]
        if char in "'\"`[":  # a quoted name or string: skip to its end
            close = "]" if char == "[" else char
            end = query.find(close, i + 1)
            while end != -1 and close != "]" and query.startswith(close * 2, end):
                end = query.find(close, end + 2)  # a doubled quote is part of the text
            i = n if end == -1 else end + 1
        elif query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end == -1 else end + 1
        elif query.startswith("/*", i):
            end = query.find("*/", i + 2)
            i = n if end == -1 else end + 2
        elif char == ";":
            # Outside quotes and comments; a trigger body's inner ';' is not an end yet.
            if sqlite3.complete_statement(query[start : i + 1]):
                statements.append(query[start : i + 1])
                start = i + 1
            i += 1
        else:
            i += 1
    if query[start:].strip():
        statements.append(query[start:])
    return statements


def strip_comments(sql: str) -> str:
    """``sql`` without its comments and semicolons: empty when it holds no statement."""
    if "--" not in sql and "/*" not in sql:  # the common case, without a walk in Python
        return sql.strip().strip(";").strip()
    out, i, n = [], 0, len(sql)
    while i < n:
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(sql[i])
            i += 1
    return "".join(out).strip().strip(";").strip()


class Cursor:
    """The result of one ``sql.exec``: rows as dicts (iterate, ``fetchall``, ``one``) or tuples
    (``raw``).

    Rows are read in full when the statement runs, so a cursor stays valid after the event's
    transaction commits. ``rows_read`` counts the rows the statement returned,
    ``rows_written`` the rows it inserted, updated or deleted, and ``last_row_id`` is the
    connection's last inserted rowid (SQLite's ``last_insert_rowid()``) after it ran.
    """

    __slots__ = ("_rows", "column_names", "last_row_id", "rows_read", "rows_written")

    def __init__(
        self,
        column_names: list[str],
        rows: list[tuple[Any, ...]],
        rows_written: int,
        last_row_id: int = 0,
    ) -> None:
        self.column_names = column_names
        self._rows = rows
        self.rows_read = len(rows)
        self.rows_written = rows_written
        self.last_row_id = last_row_id

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = self.column_names
        return (dict(zip(names, row, strict=True)) for row in self._rows)

    def fetchall(self) -> list[dict[str, Any]]:
        return list(self)

    def raw(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)

    def one(self) -> dict[str, Any]:
        """The single row of the result; :class:`SqlError` when there are none or several."""
        if len(self._rows) != 1:
            kind = "no results" if not self._rows else f"{len(self._rows)} results"
            raise SqlError(f"expected exactly one result from the SQL query, but got {kind}")
        return dict(zip(self.column_names, self._rows[0], strict=True))


class SqlStorage:
    """``ctx.storage.sql``: run SQL on the object's own database."""

    __slots__ = ("_core",)

    def __init__(self, core: StorageCore) -> None:
        self._core = core

    def exec(self, query: str, *params: Any) -> Cursor:
        """Run ``query`` (one or more statements) inside the event's transaction.

        ``params`` bind the ``?`` placeholders of the last statement. Errors from SQLite come
        back as :class:`SqlError` carrying SQLite's message; breached limits as
        :class:`LimitExceeded`.
        """
        if not isinstance(query, str):
            raise TypeError(f"sql.exec takes the query as a str, got {type(query).__name__}")
        limits = self._core.limits
        statements = checked_query(query, limits)
        checked = checked_params(params, limits)
        names, rows, written, last_row_id = self._core.run_user_sql(statements, checked)
        return Cursor(names, rows, written, last_row_id)


def checked_query(query: str, limits: Limits) -> tuple[str, ...]:
    """The statements of ``query`` as :meth:`SqlStorage.exec` runs them, after its checks:
    :class:`SqlError` for text that is no SQL raydo runs, :class:`LimitExceeded` past
    ``sql_statement_bytes``. For platform objects that run user SQL on their core."""
    size, statements = _parsed(query) if len(query) <= _CACHED_QUERY else _parse(query)
    limits.check("sql_statement_bytes", size, "the SQL query")
    return statements


def checked_params(params: Sequence[Any], limits: Limits) -> tuple[Any, ...]:
    """``params`` as :meth:`SqlStorage.exec` binds them, after its checks: at most
    ``sql_params`` of them, each None, an int in SQLite's range, a float, or a str or bytes
    within ``value_bytes`` (else :class:`LimitExceeded` or :class:`SqlError`)."""
    if len(params) > limits.sql_params:
        raise LimitExceeded(
            "sql_params",
            f"{len(params)} parameters given; at most {limits.sql_params} are allowed",
        )
    return _check_params(params, limits.value_bytes)


#: Queries up to this many characters are parsed once per process (an object runs the same
#: few again and again); longer ones, each time.
_CACHED_QUERY = 4096


def _parse(query: str) -> tuple[int, tuple[str, ...]]:
    """The size of ``query`` in bytes and its statements, or the SqlError that refuses it."""
    try:
        size = len(query.encode("utf-8"))
    except UnicodeEncodeError:
        raise SqlError("the SQL query is not valid Unicode (a lone surrogate)") from None
    if "\x00" in query:
        raise SqlError("the SQL query contains a NUL character")
    if TAG_START in query:
        raise SqlError(
            f"SQL carrying {TAG_START!r} is not allowed: that comment marks raydo's own statements"
        )
    statements = tuple(s for s in split_statements(query) if strip_comments(s))
    if not statements:
        raise SqlError("the SQL query did not contain a statement")
    return size, statements


_parsed = functools.lru_cache(maxsize=256)(_parse)


def _check_params(params: Sequence[Any], value_bytes: int) -> tuple[Any, ...]:
    for i, value in enumerate(params):
        if isinstance(value, (str, bytes)):
            size = len(value)
            if isinstance(value, str) and size * 4 > value_bytes:  # else surely small enough
                size = len(value.encode("utf-8", "surrogatepass"))
            if size > value_bytes:
                raise LimitExceeded(
                    "value_bytes",
                    f"parameter {i + 1} is {size} bytes; at most {value_bytes} are allowed",
                )
            continue
        if value is None or isinstance(value, float):
            continue
        if isinstance(value, int):
            if not -(2**63) <= value < 2**63:
                raise SqlError(f"parameter {i + 1} is an integer outside SQLite's 64-bit range")
            continue
        raise SqlError(
            f"parameter {i + 1} has type {type(value).__name__}; SQL parameters must be"
            " None, int, float, str or bytes"
        )
    return tuple(params)
