"""SQLAlchemy Core over the database binding (``env.DB``): statements, types, errors and bad
input, on real hosts (in process and on Ray), through ``raydo.bindings.orm.async_engine``."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.expression import BindParameter

from raydo.bindings import orm
from raydo.bindings.d1 import D1Database, D1Error
from raydo.gateway.testing import TestApp, start_app
from raydo.storage import LimitExceeded
from tests.placements import Placement

AppCopy = Callable[[str], Path]

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), unique=True, nullable=False),
    Column("big", BigInteger),
    Column("ratio", Float),
    Column("flag", Boolean),
    Column("data", LargeBinary),
    Column("at", DateTime),
)


@pytest.fixture
def app_dir(app_copy: AppCopy) -> Path:
    return app_copy("orm")


@pytest.fixture
async def app(app_dir: Path, placement: Placement) -> AsyncIterator[TestApp]:
    async with start_app(app_dir, **placement) as app:
        yield app


@pytest.fixture
async def engine(app: TestApp) -> AsyncIterator[AsyncEngine]:
    engine = orm.async_engine(database(app))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


def raydo_error(error: sqlalchemy.exc.DBAPIError) -> Exception:
    """raydo's own error behind SQLAlchemy's (``error.orig`` is the adapter's PEP 249 one)."""
    adapter = error.orig
    assert isinstance(adapter, orm.dbapi.Error)
    return adapter.driver_exception


def database(app: TestApp) -> D1Database:
    db = app.env.DB
    assert isinstance(db, D1Database)
    return db


async def test_create_all_makes_the_tables_once_and_sees_them_again(
    app: TestApp, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)  # has_table finds it: no second CREATE
        names = await conn.run_sync(lambda c: sqlalchemy.inspect(c).get_table_names())
    assert "things" in names
    row = (
        await database(app)
        .prepare("SELECT sql FROM sqlite_master WHERE name = ?")
        .bind("things")
        .first()
    )
    assert "CREATE TABLE things" in row["sql"]


async def test_insert_returning_select_update_delete(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        inserted = await conn.execute(
            insert(things).values(name="ada", big=1).returning(things.c.id, things.c.name)
        )
        assert inserted.all() == [(1, "ada")]
        result = await conn.execute(insert(things).values(name="bob", big=2))
        assert result.inserted_primary_key == (2,)
        rows = await conn.execute(select(things.c.name).order_by(things.c.name.desc()))
        assert rows.scalars().all() == ["bob", "ada"]
        updated = await conn.execute(update(things).where(things.c.big >= 1).values(big=10))
        assert updated.rowcount == 2
        changed = await conn.execute(
            update(things).where(things.c.name == "ada").values(big=11).returning(things.c.big)
        )
        assert changed.scalar_one() == 11
        gone = await conn.execute(delete(things).where(things.c.name == "bob"))
        assert gone.rowcount == 1
        count = await conn.execute(select(func.count()).select_from(things))
        assert count.scalar_one() == 1
        await conn.commit()


async def test_many_rows_in_one_execute_cut_under_the_parameter_limit(
    engine: AsyncEngine,
) -> None:
    # 300 rows of 2 parameters: insertmanyvalues cuts them into statements of at most 100
    # parameters (the bindings' sql_params), every id still returned in order.
    rows = [{"name": f"n{i}", "big": -i} for i in range(300)]
    async with engine.connect() as conn:
        ids = await conn.execute(insert(things).returning(things.c.id), rows)
        assert ids.scalars().all() == list(range(1, 301))
        total = await conn.execute(select(func.sum(things.c.big)))
        assert total.scalar_one() == -sum(range(300))


async def test_executemany_is_one_batch_all_or_nothing(app: TestApp, engine: AsyncEngine) -> None:
    statement = text("INSERT INTO things (name, big) VALUES (:name, :big)")
    async with engine.connect() as conn:
        done = await conn.execute(statement, [{"name": "a", "big": 1}, {"name": "b", "big": 2}])
        assert done.rowcount == 2
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            await conn.execute(statement, [{"name": "c", "big": 3}, {"name": "a", "big": 4}])
    names = await database(app).prepare("SELECT name FROM things ORDER BY name").raw()
    assert names == [["a"], ["b"]]  # the failed batch left nothing, "c" included


async def test_types_round_trip_and_are_stored_as_sqlite_stores_them(
    app: TestApp, engine: AsyncEngine
) -> None:
    at = datetime.datetime(2026, 12, 4, 17, 30, 5, 123456)
    values: list[dict[str, Any]] = [
        dict(name="max", big=2**63 - 1, ratio=0.1, flag=True, data=b"\x00\xff" * 1000, at=at),
        dict(name="min", big=-(2**63), ratio=-1e300, flag=False, data=b"", at=at.date()),
        dict(name="none", big=None, ratio=None, flag=None, data=None, at=None),
    ]
    async with engine.connect() as conn:
        await conn.execute(insert(things), values)
        rows = (await conn.execute(select(things).order_by(things.c.id))).mappings().all()
    assert [r["big"] for r in rows] == [2**63 - 1, -(2**63), None]
    assert [r["ratio"] for r in rows] == [0.1, -1e300, None]
    assert [r["flag"] for r in rows] == [True, False, None]
    assert [r["data"] for r in rows] == [b"\x00\xff" * 1000, b"", None]
    assert [r["at"] for r in rows] == [at, datetime.datetime(2026, 12, 4), None]
    stored = (
        await database(app)
        .prepare(
            "SELECT typeof(big) AS big, typeof(data) AS data, at, flag FROM things WHERE id = 1"
        )
        .first()
    )
    assert stored == {
        "big": "integer",
        "data": "blob",
        "at": "2026-12-04 17:30:05.123456",  # SQLAlchemy's SQLite DATETIME text
        "flag": 1,
    }


async def test_a_constraint_is_an_integrity_error_wrapping_d1_error(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(insert(things).values(name="ada"))
        with pytest.raises(sqlalchemy.exc.IntegrityError) as caught:
            await conn.execute(insert(things).values(name="ada"))
        with pytest.raises(sqlalchemy.exc.IntegrityError, match="NOT NULL"):
            await conn.execute(insert(things).values(big=1))
    error = caught.value
    assert isinstance(error.orig, orm.dbapi.IntegrityError)
    d1 = raydo_error(error)
    assert isinstance(d1, D1Error) and d1.code == "SQLITE_CONSTRAINT_UNIQUE"
    assert error.orig.__cause__ is d1
    assert "UNIQUE constraint failed: things.name" in str(error)
    assert "INSERT INTO things" in str(error)  # SQLAlchemy names the statement


async def test_sql_errors_and_refused_statements_are_operational_errors(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        with pytest.raises(sqlalchemy.exc.OperationalError, match="no such table: missing"):
            await conn.execute(text("SELECT * FROM missing"))
        with pytest.raises(sqlalchemy.exc.OperationalError, match="syntax error"):
            await conn.execute(text("SELEC 1"))
        # The app sends no transaction statements: the binding's rules refuse them.
        with pytest.raises(sqlalchemy.exc.OperationalError) as caught:
            await conn.exec_driver_sql("BEGIN")
        with pytest.raises(sqlalchemy.exc.OperationalError):
            await conn.execute(text("SELECT * FROM _raydo_kv"))
        # The connection still works after each.
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    assert isinstance(raydo_error(caught.value), D1Error)


async def test_unbindable_and_huge_values_are_clear_errors_before_anything_runs(
    app: TestApp, engine: AsyncEngine
) -> None:
    async with engine.connect() as conn:
        # Checked by the adapter before anything is sent (the same inside objects).
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="has type object"):
            await conn.execute(text("SELECT :x").bindparams(x=object()))
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="has type dict"):
            await conn.execute(text("SELECT :x").bindparams(x={"a": 1}))
        with pytest.raises(sqlalchemy.exc.DataError, match="64-bit"):
            await conn.execute(insert(things).values(name="big", big=2**63))
        with pytest.raises(sqlalchemy.exc.DataError, match="NaN"):
            await conn.execute(insert(things).values(name="nan", ratio=float("nan")))
        with pytest.raises(sqlalchemy.exc.DataError, match="value_bytes") as huge:
            await conn.execute(insert(things).values(name="huge", data=b"x" * (3 * 2**20)))
        limited = raydo_error(huge.value)
        assert isinstance(limited, D1Error) and limited.limit == "value_bytes"
        many: BindParameter[list[int]] = bindparam("ids", expanding=True)
        with pytest.raises(sqlalchemy.exc.OperationalError, match="sql_params"):
            await conn.execute(select(things).where(things.c.id.in_(many)), {"ids": [*range(101)]})
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="qmark"):
            await conn.exec_driver_sql("SELECT :x", {"x": 1})
        with pytest.raises(sqlalchemy.exc.DataError, match="Unicode"):
            await conn.execute(text("SELECT :x").bindparams(x="\ud800"))
        # Blobs given as bytearray or memoryview bind as bytes.
        await conn.execute(insert(things).values(name="view", data=memoryview(b"\x01\x02")))
        stored = await conn.execute(select(things.c.data).where(things.c.name == "view"))
        assert stored.scalar_one() == b"\x01\x02"
    assert await database(app).prepare("SELECT count(*) AS n FROM things").first("n") == 1


async def test_a_sync_engine_on_the_database_binding_is_refused(app: TestApp) -> None:
    with pytest.raises(TypeError, match=r"async_engine\(env.DB\)"):
        orm.engine(database(app))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ctx\.storage"):
        orm.async_engine("sqlite:///x.db")  # type: ignore[arg-type]


async def test_commit_and_rollback_send_nothing_and_each_statement_stands(
    app: TestApp, engine: AsyncEngine
) -> None:
    conn: AsyncConnection
    async with engine.connect() as conn:
        await conn.execute(insert(things).values(name="kept"))
        await conn.rollback()  # D1's rule: each statement committed when it returned
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(name="also"))
    names = await database(app).prepare("SELECT name FROM things ORDER BY id").raw()
    assert names == [["kept"], ["also"]]


async def test_an_engine_made_from_the_url_alone_says_how_to_make_one() -> None:
    # The URLs name no database: without the helpers' creator, connecting says what to do.
    url_only = create_engine("raydo+storage://")
    with pytest.raises(sqlalchemy.exc.InterfaceError, match=r"async_engine\(env\.DB\)"):
        url_only.connect().close()
    engine = create_async_engine("raydo+d1://")
    with pytest.raises(sqlalchemy.exc.InterfaceError, match="async_creator"):
        async with engine.connect():
            pass
    await engine.dispose()


def test_the_limit_error_is_the_storage_one() -> None:
    # The adapter maps raydo's own limit error too (inside objects it is not a D1Error).
    error = orm.dbapi.translate(LimitExceeded("value_bytes", "too big"))
    assert isinstance(error, orm.dbapi.DataError)
