"""The dialects: SQLAlchemy's own SQLite dialect (its SQL compiler, DDL and types), with
:mod:`bindings.orm.dbapi` as the driver.

``raydo+storage`` is sync (an object's ``ctx.storage``), and gives ``create_async_engine``
its async twin; ``raydo+d1`` is async only (``env.DB``). Neither names a database in its URL:
the engine's ``creator`` (``async_creator``) says which, as :func:`bindings.orm.engine` and
:func:`bindings.orm.async_engine` set it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine.interfaces import ConnectArgsType, IsolationLevel
from sqlalchemy.engine.url import URL

from raydo.storage.limits import Limits

from . import dbapi as _dbapi
from ._async import AsyncAdapt_raydo_dbapi


class RaydoDialect(SQLiteDialect):
    """SQLite's SQL over raydo's SQL storage, sync (``raydo+storage://``)."""

    driver = "storage"
    supports_statement_cache = True
    # The bindings' limit on the parameters of one statement (``sql_params``): many-row
    # INSERTs are cut into statements under it.
    insertmanyvalues_max_parameters = Limits().sql_params

    @classmethod
    def import_dbapi(cls) -> Any:
        return _dbapi

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # A connection holds nothing open: making one per checkout costs nothing, and keeps
        # none across objects, events or event loops.
        return pool.NullPool

    @classmethod
    def get_async_dialect_cls(cls, url: URL) -> type[RaydoAsyncDialect]:
        return RaydoAsyncDialect

    def create_connect_args(self, url: URL) -> ConnectArgsType:
        return [], {}

    # The bindings have one isolation, SQLite's serializable transactions (PRAGMA
    # read_uncommitted, what SQLite's dialect would ask, is refused by them).
    def get_isolation_level_values(self, dbapi_connection: Any) -> list[IsolationLevel]:
        return ["SERIALIZABLE"]

    def get_isolation_level(self, dbapi_connection: Any) -> IsolationLevel:
        return "SERIALIZABLE"

    def set_isolation_level(self, dbapi_connection: Any, level: IsolationLevel) -> None:
        if level != "SERIALIZABLE":
            raise _dbapi.NotSupportedError(
                f"isolation level {level!r}: raydo's SQL runs SERIALIZABLE only"
            )


class RaydoAsyncDialect(RaydoDialect):
    """The async twin: ``create_async_engine`` over ``env.DB`` or ``ctx.storage``."""

    driver = "d1"
    is_async = True
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return AsyncAdapt_raydo_dbapi()

    def get_driver_connection(self, connection: Any) -> Any:
        return connection._connection
