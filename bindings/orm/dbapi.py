"""A PEP 249 module over raydo's SQL: what SQLAlchemy's dialects load (``import_dbapi``).

Two transports run the statements (:mod:`bindings.orm._transports`): the database binding
(``env.DB``, async) and an object's own ``ctx.storage.sql`` (sync). The sync
:class:`Connection` here serves the second directly; :class:`AsyncConnection` is the asyncio
driver that :mod:`bindings.orm._async` adapts for SQLAlchemy, the way SQLAlchemy's aiosqlite
dialect adapts aiosqlite.

Neither sends BEGIN, COMMIT or ROLLBACK (the bindings refuse them): ``commit()`` and
``rollback()`` change nothing (see the README's "SQLAlchemy" section for what a commit means).
Errors are this module's PEP 249 classes, each carrying raydo's own error (``D1Error``,
``SqlError``, ``LimitExceeded``, ...) as ``orig`` and as its ``__cause__``.
"""

from __future__ import annotations

import math
import sqlite3
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import EmulatedDBAPIException

from raydo.bindings.d1 import D1Error
from raydo.storage import LimitExceeded, ObjectStorage, StorageError
from raydo.storage.errors import SqlError

from ._transports import AsyncTransport, Outcome, StorageTransport, SyncTransport

apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"
# The statements run on this Python's SQLite (the database object's host runs the same).
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info
#: Blobs bind as ``bytes`` (sqlite3's ``Binary`` is ``memoryview``, which the bindings refuse).
Binary = bytes


class Warning(Exception):
    """PEP 249's warning (never raised)."""


class Error(EmulatedDBAPIException):
    """Base of the errors; ``orig`` is raydo's error behind it (``D1Error``, ``SqlError`` ...)."""


class InterfaceError(Error):
    """The adapter was misused (a closed connection or cursor)."""


class DatabaseError(Error):
    """The database refused the statement."""


class DataError(DatabaseError):
    """A value could not be stored (too big, out of range, of the wrong type)."""


class OperationalError(DatabaseError):
    """SQLite's or raydo's error while running the statement (syntax, no such table, a
    refused statement, a time limit)."""


class IntegrityError(DatabaseError):
    """A constraint failed (UNIQUE, NOT NULL, FOREIGN KEY, CHECK)."""


class InternalError(DatabaseError):
    """SQLite's internal error."""


class ProgrammingError(DatabaseError):
    """The statement or its parameters are wrong (an unbindable parameter, a bad paramstyle)."""


class NotSupportedError(DatabaseError):
    """Not supported by raydo's bindings."""


# SQLite's primary result codes (the start of ``sqlite_errorname``), as pysqlite maps them.
_BY_CODE: dict[str, type[Error]] = {
    "SQLITE_CONSTRAINT": IntegrityError,
    "SQLITE_MISMATCH": DataError,
    "SQLITE_TOOBIG": DataError,
    "SQLITE_RANGE": ProgrammingError,
    "SQLITE_MISUSE": ProgrammingError,
    "SQLITE_INTERNAL": InternalError,
    "SQLITE_NOTFOUND": InternalError,
}


def translate(exc: Exception) -> Exception:
    """The PEP 249 error for ``exc`` raised by a transport; other errors (a reset object, an
    overloaded host) are returned as they are."""
    if isinstance(exc, Error):
        return exc
    cls: type[Error]
    if isinstance(exc, D1Error):
        cls = _by_limit(exc.limit) if exc.limit else _by_code(exc.code)
        detail = f" [{exc.code}]" if exc.code else ""
        message = f"{exc.message}{detail}"
    elif isinstance(exc, SqlError):
        cls = _by_code(exc.sqlite_errorname)
        message = str(exc)
    elif isinstance(exc, LimitExceeded):
        cls, message = _by_limit(exc.limit), str(exc)
    elif isinstance(exc, StorageError):
        cls, message = OperationalError, str(exc)
    elif isinstance(exc, TypeError):
        cls, message = ProgrammingError, str(exc)
    elif isinstance(exc, ValueError):
        cls, message = DataError, str(exc)
    else:
        return exc
    return cls(message, exc)


def _by_limit(limit: str) -> type[Error]:
    # A value too big to store is the data's fault; a count or a time limit is the call's.
    return DataError if limit.endswith("_bytes") else OperationalError


def _by_code(code: str | None) -> type[Error]:
    if not code:
        return OperationalError
    return _BY_CODE.get("_".join(code.split("_")[:2]), OperationalError)


def check_parameters(parameters: Any) -> tuple[Any, ...]:
    """The positional parameters of one statement (``qmark``: a sequence, never a mapping)."""
    if parameters is None:
        return ()
    if isinstance(parameters, Mapping):
        raise ProgrammingError(
            "parameters must be a sequence: raydo's bindings take qmark (?) placeholders,"
            " not named ones"
        )
    if isinstance(parameters, (str, bytes)) or not isinstance(parameters, Sequence):
        raise ProgrammingError(
            f"parameters must be a list or tuple, got {type(parameters).__name__}"
        )
    return tuple(_bindable(i, value) for i, value in enumerate(parameters, 1))


def _bindable(i: int, value: Any) -> Any:
    """``value`` as both transports bind it, or the error saying why it cannot be, raised
    before anything is sent (the same on ``env.DB`` and in an object)."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise DataError(f"parameter {i} is not valid Unicode (a lone surrogate)") from None
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise DataError(f"parameter {i} is an integer outside SQLite's 64-bit range")
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise DataError(f"parameter {i} is NaN, which SQLite cannot store")
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise ProgrammingError(
        f"parameter {i} has type {type(value).__name__}; raydo's SQL binds None, bool, int,"
        " float, str and bytes"
    )


def check_operation(operation: Any) -> str:
    if not isinstance(operation, str):
        raise ProgrammingError(f"the statement must be a str, got {type(operation).__name__}")
    return operation


class _Results:
    """A cursor's state: the last statement's description, counts and unread rows."""

    arraysize = 1

    def __init__(self) -> None:
        self.description: tuple[tuple[Any, ...], ...] | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: deque[tuple[Any, ...]] = deque()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("the cursor is closed")

    def _take(self, outcome: Outcome) -> None:
        self.description = (
            tuple((name, None, None, None, None, None, None) for name in outcome.columns)
            if outcome.columns
            else None
        )
        self.rowcount = outcome.rowcount
        self.lastrowid = outcome.lastrowid
        self._rows = deque(outcome.rows)

    def _fetchone(self) -> tuple[Any, ...] | None:
        self._check_open()
        return self._rows.popleft() if self._rows else None

    def _fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        self._check_open()
        count = min(self.arraysize if size is None else size, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    def _fetchall(self) -> list[tuple[Any, ...]]:
        self._check_open()
        rows = list(self._rows)
        self._rows.clear()
        return rows


class Cursor(_Results):
    """A PEP 249 cursor over a sync transport (an object's ``ctx.storage.sql``)."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        self._check_open()
        sql, params = check_operation(operation), check_parameters(parameters)
        try:
            self._take(self.connection._transport_for_use().run(sql, params))
        except Exception as exc:
            error = translate(exc)
            if error is exc:
                raise
            raise error from exc
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> Cursor:
        self._check_open()
        sql = check_operation(operation)
        sets = [check_parameters(p) for p in seq_of_parameters]
        try:
            self._take(self.connection._transport_for_use().run_many(sql, sets))
        except Exception as exc:
            error = translate(exc)
            if error is exc:
                raise
            raise error from exc
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._fetchone()

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        return self._fetchmany(size)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._fetchall()

    def close(self) -> None:
        self._rows.clear()
        self._closed = True

    def setinputsizes(self, *sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass


class Connection:
    """A PEP 249 connection over a sync transport; holds nothing open (each statement runs
    in the event's transaction of the object)."""

    def __init__(self, transport: SyncTransport) -> None:
        self._transport: SyncTransport | None = transport

    def _transport_for_use(self) -> SyncTransport:
        if self._transport is None:
            raise InterfaceError("the connection is closed")
        return self._transport

    def cursor(self) -> Cursor:
        self._transport_for_use()
        return Cursor(self)

    def commit(self) -> None:
        """Nothing to send: the statements are the event's, and commit with it."""
        self._transport_for_use()

    def rollback(self) -> None:
        """Nothing is undone (see the module's docstring)."""

    def close(self) -> None:
        self._transport = None


def connect(storage: ObjectStorage | None = None) -> Connection:
    """PEP 249's ``connect``: a sync connection on an object's ``ctx.storage`` (what
    :func:`bindings.orm.engine` passes SQLAlchemy as its ``creator``).

    The database binding is async: its connections come from
    :func:`bindings.orm.async_engine`.
    """
    if not isinstance(storage, ObjectStorage):
        raise InterfaceError(
            "a raydo connection needs its database: make the engine with"
            " raydo.bindings.orm.engine(ctx.storage), or async_engine(env.DB)"
        )
    return Connection(StorageTransport(storage))


class AsyncCursor(_Results):
    """The asyncio driver's cursor (adapted for SQLAlchemy by ``_async``)."""

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__()
        self.connection = connection

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def execute(self, operation: str, parameters: Any = None) -> AsyncCursor:
        self._check_open()
        sql, params = check_operation(operation), check_parameters(parameters)
        try:
            self._take(await self.connection._transport_for_use().run(sql, params))
        except Exception as exc:
            error = translate(exc)
            if error is exc:
                raise
            raise error from exc
        return self

    async def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> AsyncCursor:
        self._check_open()
        sql = check_operation(operation)
        sets = [check_parameters(p) for p in seq_of_parameters]
        try:
            self._take(await self.connection._transport_for_use().run_many(sql, sets))
        except Exception as exc:
            error = translate(exc)
            if error is exc:
                raise
            raise error from exc
        return self

    async def fetchone(self) -> tuple[Any, ...] | None:
        return self._fetchone()

    async def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        return self._fetchmany(size)

    async def fetchall(self) -> list[tuple[Any, ...]]:
        return self._fetchall()

    async def close(self) -> None:
        self._rows.clear()
        self._closed = True

    async def setinputsizes(self, *sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    async def nextset(self) -> None:
        return None


class AsyncConnection:
    """The asyncio driver's connection over an async transport (``env.DB``, or
    ``ctx.storage.sql`` wrapped)."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._transport: AsyncTransport | None = transport

    def _transport_for_use(self) -> AsyncTransport:
        if self._transport is None:
            raise InterfaceError("the connection is closed")
        return self._transport

    def cursor(self) -> AsyncCursor:
        self._transport_for_use()
        return AsyncCursor(self)

    async def commit(self) -> None:
        self._transport_for_use()

    async def rollback(self) -> None:
        pass

    async def close(self) -> None:
        self._transport = None
