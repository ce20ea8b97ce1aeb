"""SQLAlchemy (and SQLModel) on raydo's databases: the database binding and an object's own SQL.

::

    from raydo.bindings import orm

    db = orm.async_engine(env.DB)                 # an AsyncEngine over the database binding
    async with AsyncSession(db) as session: ...

    class Notes(DurableObject):                   # inside an object, its own SQLite
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.db = orm.engine(ctx.storage)     # a sync Engine (storage calls are sync)

SQLAlchemy's SQLite dialect compiles the SQL; the statements run through the binding's rules
(no BEGIN/COMMIT from the app). What ``commit()`` and ``rollback()`` mean on each is in the
README's "SQLAlchemy" section. Errors are SQLAlchemy's (``sqlalchemy.exc.IntegrityError``
...), whose ``orig`` is the adapter's PEP 249 error and ``orig.orig`` raydo's (``D1Error``,
``SqlError``, ``LimitExceeded``).

The dialects are registered as ``raydo+d1`` and ``raydo+storage`` when this module is
imported; :func:`engine` and :func:`async_engine` are the way to make engines. :mod:`.dbapi`
is the PEP 249 module under them (its error classes are the ``orig`` of SQLAlchemy's errors).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.dialects import registry
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from raydo.bindings.d1 import D1Database
from raydo.storage import ObjectStorage

from . import dbapi
from ._transports import AsyncStorageTransport, D1Transport
from .dbapi import AsyncConnection

registry.register("raydo.storage", "raydo.bindings.orm._dialect", "RaydoDialect")
registry.register("raydo.d1", "raydo.bindings.orm._dialect", "RaydoAsyncDialect")

__all__ = ["async_engine", "dbapi", "engine"]


def async_engine(target: D1Database | ObjectStorage, **options: Any) -> AsyncEngine:
    """An :class:`~sqlalchemy.ext.asyncio.AsyncEngine` whose statements run on ``target``:
    a database binding (``env.DB``) or, inside an object, ``ctx.storage``.

    ``options`` go to :func:`~sqlalchemy.ext.asyncio.create_async_engine` (``echo=True`` ...).
    The engine holds no connection open; make it once (at start, or in the object's
    ``__init__``) and share it.
    """
    if isinstance(target, D1Database):
        database = target

        async def connect_d1() -> AsyncConnection:
            return AsyncConnection(D1Transport(database))

        return create_async_engine("raydo+d1://", async_creator=connect_d1, **options)
    if isinstance(target, ObjectStorage):
        storage = target

        async def connect_storage() -> AsyncConnection:
            return AsyncConnection(AsyncStorageTransport(storage))

        return create_async_engine("raydo+storage://", async_creator=connect_storage, **options)
    raise TypeError(
        "async_engine() takes a database binding (env.DB) or an object's ctx.storage,"
        f" got {type(target).__name__}"
    )


def engine(target: ObjectStorage, **options: Any) -> Engine:
    """A sync :class:`~sqlalchemy.engine.Engine` on an object's own SQLite (``ctx.storage``):
    its statements run in the event's transaction, as ``ctx.storage.sql.exec`` does.

    ``options`` go to :func:`~sqlalchemy.create_engine`. A database binding is reached over
    the network and only asynchronously: use :func:`async_engine` for ``env.DB``.
    """
    if isinstance(target, D1Database):
        raise TypeError(
            "a database binding (env.DB) is reached asynchronously: use"
            " orm.async_engine(env.DB) with AsyncSession"
        )
    if not isinstance(target, ObjectStorage):
        raise TypeError(f"engine() takes an object's ctx.storage, got {type(target).__name__}")
    storage = target
    return create_engine("raydo+storage://", creator=lambda: dbapi.connect(storage), **options)
