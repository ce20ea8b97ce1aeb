"""The database client (``env.DB``): Cloudflare D1's shape in Python.

::

    row = await env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(7).first()
    result = await env.DB.prepare("INSERT INTO users (name) VALUES (?)").bind("ada").run()
    result.meta.last_row_id
    await env.DB.batch([insert.bind("a"), insert.bind("b")])   # all or nothing
    await env.DB.exec("CREATE TABLE t (x); CREATE INDEX t_x ON t (x)")

Each database is one object of the internal binding ``_D1`` (:mod:`bindings.d1._object`),
named by ``database_name``: every call is one event of that object, so a database has one
writer and reads its own writes from every gateway process, and it is a plain SQLite file
where :func:`storage.layout.object_file` puts every object's. A call travels as one RPC and
runs as one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from raydo.actors import Namespace, ObjectReset, Stub, in_event

from .._batching import ReadBatch
from ._object import ALL_ROWS

#: How many statements a database client remembers as answered without a transaction.
READ_ONLY_KNOWN = 256

#: A read as the read batch sends it: ``[sql, params, max_rows]``.
Call = tuple[str, list[Any], int]

_INT64 = range(-(2**63), 2**63)


class D1Error(Exception):
    """A statement failed; the message is SQLite's (or the limit's), and nothing of the call
    was written.

    ``code`` is SQLite's error name when it gave one (``"SQLITE_CONSTRAINT_UNIQUE"``),
    ``limit`` names the breached limit when one was (a time limit, ``cpu_ms`` or
    ``event_seconds``, when the database stopped a runaway call), and ``statement`` is the
    index of the failing statement within a ``batch`` (0 otherwise).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        limit: str | None = None,
        statement: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.limit = limit
        self.statement = statement


@dataclass(frozen=True, slots=True)
class D1Meta:
    """What running a statement did (D1's ``meta``).

    ``duration`` is the SQL's run time in milliseconds inside the database object;
    ``rows_read`` the rows the statement returned; ``rows_written`` and ``changes`` the rows
    it inserted, updated or deleted (triggers included); ``last_row_id`` the row id of
    the last row the statement itself inserted (0 when it inserted none); ``size_after``
    the database's size in bytes.
    """

    duration: float
    rows_read: int
    rows_written: int
    last_row_id: int
    changes: int
    changed_db: bool
    size_after: int


@dataclass(frozen=True, slots=True)
class D1Result:
    """The rows of a statement as dicts (column name to value), and its ``meta``."""

    results: list[dict[str, Any]]
    meta: D1Meta
    success: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape D1 returns: ``{"results", "success", "meta"}``."""
        return {"results": self.results, "success": self.success, "meta": asdict(self.meta)}


@dataclass(frozen=True, slots=True)
class D1ExecResult:
    """What ``exec`` did: how many statements ran, and how long they took in milliseconds."""

    count: int
    duration: float


@dataclass(frozen=True, slots=True)
class D1Rows:
    """A statement's result as SQLite gave it: the column names in order (duplicates kept),
    the rows as lists of values, and ``meta`` (what :meth:`PreparedStatement.rows` and
    :meth:`D1Database.batch_rows` return; the ORM adapter reads it)."""

    columns: list[str]
    rows: list[list[Any]]
    meta: D1Meta

    def dicts(self) -> list[dict[str, Any]]:
        columns = self.columns
        return [dict(zip(columns, row, strict=True)) for row in self.rows]


class PreparedStatement:
    """One SQL statement and its bound values; immutable (``bind`` returns a new one).

    Nothing is sent until ``first``, ``all``, ``run`` or ``raw`` is awaited, or the statement
    is part of a ``batch``.
    """

    __slots__ = ("_database", "params", "sql")

    def __init__(self, database: D1Database, sql: str, params: tuple[Any, ...] = ()) -> None:
        self._database = database
        self.sql = sql
        self.params = params

    def __repr__(self) -> str:
        return f"PreparedStatement({self.sql[:80]!r}, {len(self.params)} params)"

    def bind(self, *values: Any) -> PreparedStatement:
        """The statement with ``values`` bound to its ``?`` (or ``?NNN``) placeholders, in order.

        Values are ``None``, ``bool`` (stored as 1/0), ``int`` (64-bit), ``float``, ``str`` or
        bytes-like; anything else raises ``TypeError`` here, before anything is sent.
        """
        return PreparedStatement(self._database, self.sql, _bind_values(values))

    async def first(self, column: str | None = None) -> Any:
        """The first row as a dict, or ``None`` when there is none; with ``column``, that
        column's value of the first row (``D1Error`` when the result has no such column).

        Only the first row comes back from the database; the query itself is not changed
        (add ``LIMIT 1`` to spare the database the rest).
        """
        if column is not None and not isinstance(column, str):
            raise TypeError(f"first() takes a column name (str), got {type(column).__name__}")
        columns, rows, _ = (await self._database._results([self], max_rows=1))[0]
        if column is not None and column not in columns:
            known = ", ".join(columns) or "none"
            raise D1Error(f"column {column!r} not found in the result (columns: {known})")
        if not rows:
            return None
        row = dict(zip(columns, rows[0], strict=True))
        return row if column is None else row[column]

    async def all(self) -> D1Result:
        """Every row as a dict, with ``meta``."""
        found = (await self._database._run([self]))[0]
        return D1Result(found.dicts(), found.meta)

    async def run(self) -> D1Result:
        """Run the statement (typically a write); the same result as :meth:`all`."""
        return await self.all()

    async def raw(self, column_names: bool = False) -> list[list[Any]]:
        """Every row as a list of values in column order; with ``column_names``, the first
        list holds the column names."""
        columns, rows, _ = (await self._database._results([self]))[0]
        return [list(columns), *rows] if column_names else rows

    async def rows(self) -> D1Rows:
        """The column names, every row as a list and ``meta`` together (raydo's own: D1 gives
        either the rows or the meta, not both)."""
        return (await self._database._run([self]))[0]


class D1Database:
    """``env.DB``: a database of the app (one ``[[d1_databases]]`` entry)."""

    def __init__(self, namespace: Namespace, database_name: str) -> None:
        self._namespace = namespace
        self.database_name = database_name
        self._id = namespace.id_from_name(database_name)
        # Statements the database answered without a transaction (they only read): calls of
        # one of them started together travel in one event (see bindings._batching).
        self._read_only: dict[str, None] = {}
        self._reads: ReadBatch[Call, list[Any]] = ReadBatch(self._read_each, self._read_alone)

    def __repr__(self) -> str:
        return f"D1Database({self.database_name!r})"

    def prepare(self, sql: str) -> PreparedStatement:
        """A statement to bind and run; exactly one SQL statement (several raise ``D1Error``
        when run: use :meth:`exec`)."""
        if not isinstance(sql, str):
            raise TypeError(f"prepare() takes the SQL as a str, got {type(sql).__name__}")
        return PreparedStatement(self, sql)

    async def batch(self, statements: Sequence[PreparedStatement]) -> list[D1Result]:
        """Run ``statements`` in order in one transaction: all of them, or, when one fails,
        none (``D1Error`` says which, in ``statement``). One result per statement."""
        self._check_batch(statements)
        if not statements:
            return []
        return [D1Result(found.dicts(), found.meta) for found in await self._run(statements)]

    async def batch_rows(self, statements: Sequence[PreparedStatement]) -> list[D1Rows]:
        """:meth:`batch` (in order, one transaction, all or none), each result as
        :class:`D1Rows`: columns, rows as lists, ``meta``."""
        self._check_batch(statements)
        return list(await self._run(statements)) if statements else []

    async def exec(self, sql: str) -> D1ExecResult:
        """Run one or more ``;``-separated statements without parameters, in one transaction
        (all or nothing), e.g. a schema; returns how many ran."""
        if not isinstance(sql, str):
            raise TypeError(f"exec() takes the SQL as a str, got {type(sql).__name__}")
        try:
            reply = await self._stub().exec(sql)
        except ObjectReset as exc:
            raise _stopped(exc) from None
        _raise_error(reply)
        return D1ExecResult(int(reply["count"]), float(reply["duration"]))

    # ---- internals ------------------------------------------------------------------------

    def _check_batch(self, statements: Sequence[PreparedStatement]) -> None:
        if isinstance(statements, (str, bytes)) or not isinstance(statements, Sequence):
            raise TypeError("batch() takes a list of prepared statements")
        for i, statement in enumerate(statements):
            if not isinstance(statement, PreparedStatement):
                raise TypeError(
                    f"batch() item {i} is a {type(statement).__name__}, not a prepared statement"
                )
            if statement._database is not self:
                raise ValueError(f"batch() item {i} was prepared on another database")

    def _stub(self) -> Any:
        # A fresh stub per call: a stub that saw ObjectReset stays broken, a database not.
        # (Made directly: the id is ours, so get()'s check of it would only cost a MAC.)
        return Stub(self._namespace, self._id)

    async def _query(self, payload: list[Any]) -> dict[str, Any]:
        reply: dict[str, Any] = await self._stub().query(payload)
        return reply

    async def _read_each(self, calls: list[Call]) -> list[list[Any] | None]:
        """The results of reads started together (see :meth:`DatabaseObject.read_each`),
        None for each the database left for its own call."""
        reply = await self._stub().read_each(calls)
        columns, size = reply["columns"], reply["size_after"]
        return [
            None
            if answer is None
            else [
                list(columns[answer[0]]),  # each caller its own, as when sent alone
                answer[1],
                {
                    "duration": answer[4],
                    "rows_read": answer[2],
                    "rows_written": 0,
                    "last_row_id": answer[3],
                    "size_after": size,
                },
            ]
            for answer in reply["answers"]
        ]

    async def _read_alone(self, call: Call) -> list[Any]:
        reply = await self._query([call])
        _raise_error(reply)
        result: list[Any] = reply["results"][0]
        return result

    async def _run(
        self, statements: Sequence[PreparedStatement], max_rows: int = ALL_ROWS
    ) -> list[D1Rows]:
        found = []
        for columns, rows, meta in await self._results(statements, max_rows):
            written = int(meta["rows_written"])
            found.append(
                D1Rows(
                    columns,
                    rows,
                    D1Meta(
                        duration=float(meta["duration"]),
                        rows_read=int(meta["rows_read"]),
                        rows_written=written,
                        last_row_id=int(meta["last_row_id"]),
                        changes=written,
                        changed_db=written > 0,
                        size_after=int(meta["size_after"]),
                    ),
                )
            )
        return found

    async def _results(
        self, statements: Sequence[PreparedStatement], max_rows: int = ALL_ROWS
    ) -> list[list[Any]]:
        """The database's ``[columns, rows, meta]`` for each of ``statements``
        (``D1Error`` when one failed)."""
        first = statements[0]
        single = len(statements) == 1
        try:
            if single and first.sql in self._read_only and not in_event():
                return [await self._reads.read((first.sql, list(first.params), max_rows))]
            reply = await self._query([[s.sql, list(s.params), max_rows] for s in statements])
        except ObjectReset as exc:
            raise _stopped(exc) from None
        if single and reply.get("read_only"):
            known = self._read_only
            if first.sql not in known:
                if len(known) >= READ_ONLY_KNOWN:
                    del known[next(iter(known))]
                known[first.sql] = None
        _raise_error(reply)
        results: list[list[Any]] = reply["results"]
        return results


def _stopped(reset: ObjectReset) -> Exception:
    """The database's object was reset: by a time limit, a :class:`D1Error` naming it."""
    if reset.limit is None:
        return reset
    return D1Error(f"the call was stopped: {reset}", limit=reset.limit)


def _raise_error(reply: Mapping[str, Any]) -> None:
    error = reply.get("error")
    if error is not None:
        raise D1Error(
            str(error["message"]),
            code=error.get("code"),
            limit=error.get("limit"),
            statement=int(error.get("statement") or 0),
        )


def _bind_values(values: tuple[Any, ...]) -> tuple[Any, ...]:
    bound: list[Any] = []
    for i, value in enumerate(values, 1):
        if value is None or isinstance(value, (str, bytes)):
            if isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"bound value {i} is not valid Unicode") from None
            bound.append(value)
        elif isinstance(value, bool):
            bound.append(int(value))
        elif isinstance(value, int):
            if value not in _INT64:
                raise ValueError(f"bound value {i} is outside SQLite's 64-bit integer range")
            bound.append(value)
        elif isinstance(value, float):
            if math.isnan(value):
                raise ValueError(f"bound value {i} is NaN, which SQLite cannot store")
            bound.append(value)
        elif isinstance(value, (bytearray, memoryview)):
            bound.append(bytes(value))
        else:
            raise TypeError(
                f"bound value {i} has type {type(value).__name__}; D1 binds None, bool, int,"
                " float, str and bytes"
            )
    return tuple(bound)
