"""The asyncio driver of :mod:`bindings.orm.dbapi`, adapted for SQLAlchemy's async engine.

The same pattern as SQLAlchemy's aiosqlite dialect (``sqlalchemy/dialects/sqlite/
aiosqlite.py``): the ``AsyncAdapt_*`` classes of ``sqlalchemy.connectors.asyncio`` give the
sync face SQLAlchemy's core calls, and ``await_`` runs each driver coroutine in the greenlet
that ``create_async_engine`` set up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.connectors.asyncio import (
    AsyncAdapt_dbapi_connection,
    AsyncAdapt_dbapi_cursor,
    AsyncAdapt_dbapi_module,
)
from sqlalchemy.util.concurrency import await_

from . import dbapi as _dbapi


class AsyncAdapt_raydo_cursor(AsyncAdapt_dbapi_cursor):
    __slots__ = ()


class AsyncAdapt_raydo_connection(AsyncAdapt_dbapi_connection):
    __slots__ = ()

    _cursor_cls = AsyncAdapt_raydo_cursor


_DBAPI_NAMES = (
    "Warning",
    "Error",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "Binary",
    "apilevel",
    "threadsafety",
    "paramstyle",
    "sqlite_version",
    "sqlite_version_info",
)


class AsyncAdapt_raydo_dbapi(AsyncAdapt_dbapi_module):
    """The module an async raydo dialect loads: ``_dbapi``'s names, and a ``connect`` that
    takes the driver connection from the engine's ``async_creator``."""

    def __init__(self) -> None:
        super().__init__(_dbapi, dbapi_module=_dbapi)
        for name in _DBAPI_NAMES:
            setattr(self, name, getattr(_dbapi, name))

    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdapt_raydo_connection:
        creator: Callable[[], Awaitable[_dbapi.AsyncConnection]] | None = kwargs.pop(
            "async_creator_fn", None
        )
        if creator is None or args or kwargs:
            raise _dbapi.InterfaceError(
                "a raydo async engine connects through its async_creator: make it with"
                " raydo.bindings.orm.async_engine(env.DB) (or ctx.storage inside an object)"
            )
        connection: Any = await_(creator())  # the driver's face is duck-typed (a Protocol)
        return AsyncAdapt_raydo_connection(self, connection)
