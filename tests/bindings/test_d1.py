"""The database binding (``env.DB``, D1's shape) over real HTTP, its migrations through the CLI,
and two gateway processes writing one database at once."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.bindings import d1
from raydo.bindings.d1 import (
    MIGRATIONS_TABLE,
    D1Database,
    D1Error,
    D1Result,
    MigrationError,
    find_migrations,
)
from raydo.gateway.cli_db import apply_migrations, database_file, list_migrations
from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from tests.cluster import RAYDO, quiet_env

AppCopy = Callable[[str], Path]


async def query(app: TestApp, sql: str, *params: Any, **options: Any) -> httpx.Response:
    return await app.http.post("/query", json={"sql": sql, "params": list(params), **options})


async def value(app: TestApp, sql: str, *params: Any, **options: Any) -> Any:
    reply = await query(app, sql, *params, **options)
    assert reply.status_code == 200, reply.text
    return reply.json()["value"]


async def error(app: TestApp, sql: str, *params: Any, **options: Any) -> dict[str, Any]:
    reply = await query(app, sql, *params, **options)
    assert reply.status_code == 400, reply.text
    body: dict[str, Any] = reply.json()
    return body


def b64(data: bytes) -> dict[str, str]:
    return {"$bytes": base64.b64encode(data).decode()}


@pytest.fixture
def app_dir(app_copy: AppCopy) -> Path:
    """The d1 test app with its migrations applied (users: id, name UNIQUE, email)."""
    folder = app_copy("d1")
    assert apply_migrations(folder, "DB") == ["0001_create_users.sql", "0002_add_email.sql"]
    return folder


def test_the_plan_adds_one_internal_binding_for_every_database(app_copy: AppCopy) -> None:
    assert d1.plan([]).objects == [] and d1.plan([]).platform == []
    spec = runtime_spec(load_config(app_copy("d1")))
    internal = [b for b in spec.bindings if b.internal]
    assert [(b.name, b.class_name) for b in internal] == [
        ("_D1", "raydo.bindings.d1._object:DatabaseObject")
    ]
    assert [(p.name, p.factory, p.options["database_name"]) for p in spec.platform] == [
        ("DB", "raydo.bindings.d1:database_binding", "main"),
        ("OTHER", "raydo.bindings.d1:database_binding", "other"),
    ]


# ---- statements -------------------------------------------------------------------------


async def test_first_all_run_and_raw_over_http(app: TestApp) -> None:
    inserted = await value(
        app, "INSERT INTO users (name, email) VALUES (?, ?)", "ada", "a@x", mode="run"
    )
    assert inserted["success"] is True and inserted["results"] == []
    meta = inserted["meta"]
    assert meta["last_row_id"] == 1 and meta["rows_written"] == 1 and meta["changes"] == 1
    assert meta["changed_db"] is True and meta["size_after"] > 0 and meta["duration"] >= 0
    await value(app, "INSERT INTO users (name) VALUES (?)", "bob", mode="run")

    everyone = await value(app, "SELECT id, name, email FROM users ORDER BY id")
    assert everyone["results"] == [
        {"id": 1, "name": "ada", "email": "a@x"},
        {"id": 2, "name": "bob", "email": None},
    ]
    assert everyone["meta"]["rows_read"] == 2 and everyone["meta"]["rows_written"] == 0
    assert everyone["meta"]["changed_db"] is False

    first = "SELECT id, name FROM users ORDER BY id"
    assert await value(app, first, mode="first") == {"id": 1, "name": "ada"}
    assert await value(app, first, mode="first", column="name") == "ada"
    none = "SELECT id FROM users WHERE name = ?"
    assert await value(app, none, "nobody", mode="first") is None
    assert await value(app, none, "nobody", mode="first", column="id") is None
    missing = await error(app, first, mode="first", column="nope")
    assert "'nope' not found" in missing["error"] and "id, name" in missing["error"]

    assert await value(app, first, mode="raw") == [[1, "ada"], [2, "bob"]]
    assert await value(app, first, mode="raw", column_names=True) == [
        ["id", "name"],
        [1, "ada"],
        [2, "bob"],
    ]
    # A write that returns rows: first() gives the first, and the write is done.
    returned = "INSERT INTO users (name) VALUES (?), (?) RETURNING id"
    assert await value(app, returned, "c", "d", mode="first", column="id") == 3
    assert await value(app, "SELECT count(*) AS n FROM users", mode="first") == {"n": 4}
    # ?NNN placeholders, and a statement's trailing semicolon and comment.
    numbered = "SELECT ?2 AS b, ?1 AS a; -- done"
    assert await value(app, numbered, "x", "y", mode="first") == {"b": "y", "a": "x"}


async def test_values_come_back_exact(app: TestApp) -> None:
    await value(app, "CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB)", mode="run")
    rows = [
        [2**63 - 1, 1.5, "nul\x00inside", b64(b"\x00\xff" * 10)],
        [-(2**63), -0.0, "ünïcødé ✓ 𝄞", b64(b"")],
        [0, 1e308, "", None],
    ]
    for row in rows:
        await value(app, "INSERT INTO v VALUES (?, ?, ?, ?)", *row, mode="run")
    back = await value(app, "SELECT i, r, t, b FROM v ORDER BY rowid", mode="raw")
    assert back == rows
    # Computed in SQL and compared in SQL: nothing was rounded through a float.
    assert await value(app, "SELECT max(i) - 1 AS m FROM v", mode="first", column="m") == (
        2**63 - 2
    )
    exact = "SELECT count(*) AS n FROM v WHERE i = ?"
    assert await value(app, exact, 2**63 - 1, mode="first", column="n") == 1
    # Booleans bind as 1 and 0, as in D1.
    truth = await value(app, "SELECT ? AS t, ? AS f", True, False, mode="first")
    assert truth == {"t": 1, "f": 0}


async def test_the_binding_in_code_and_inside_objects(app: TestApp) -> None:
    db = app.env.DB
    assert isinstance(db, D1Database) and repr(db) == "D1Database('main')"
    statement = db.prepare("SELECT ? AS x")
    assert statement.bind(1) is not statement and statement.params == ()
    result = await statement.bind(b"\x01").all()
    assert isinstance(result, D1Result) and result.results == [{"x": b"\x01"}]
    assert result.to_dict()["meta"]["rows_read"] == 1
    assert await db.prepare("SELECT ? AS x").bind(bytearray(b"ab")).first("x") == b"ab"
    # An object reaches env.DB from its host like a handler does from the gateway.
    ids = [(await app.http.post(f"/users/{name}")).json()["id"] for name in ("o1", "o2")]
    assert ids == [1, 2]
    assert await db.prepare("SELECT count(*) AS n FROM users").first("n") == 2
    # A second database is another file, with its own migrations.
    assert apply_migrations(app.config, "OTHER") == ["0001_notes.sql"]
    await app.env.OTHER.prepare("INSERT INTO notes (body) VALUES ('n')").run()
    with pytest.raises(D1Error, match="no such table: notes"):
        await db.prepare("SELECT * FROM notes").all()
    files = {database_file(app.config, "DB"), database_file(app.config, "OTHER")}
    assert len(files) == 2 and all(f.is_file() for f in files)
    assert all(f.parent.parent.name == "_D1" for f in files)


# ---- errors -----------------------------------------------------------------------------


async def test_sql_errors_carry_sqlites_message_and_change_nothing(app: TestApp) -> None:
    await value(app, "INSERT INTO users (name) VALUES ('ada')", mode="run")
    cases = [
        ("SELEC 1", "syntax error", "SQLITE_ERROR"),
        ("SELECT * FROM nowhere", "no such table: nowhere", "SQLITE_ERROR"),
        ("SELECT nope FROM users", "no such column: nope", "SQLITE_ERROR"),
        (
            "INSERT INTO users (name) VALUES ('ada')",
            "UNIQUE constraint failed: users.name",
            "SQLITE_CONSTRAINT_UNIQUE",
        ),
        ("INSERT INTO users (id) VALUES (9)", "NOT NULL constraint failed", None),
        ("SELECT * FROM _raydo_kv", "belong to raydo", "SQLITE_AUTH"),
        ("BEGIN", "transaction statements are not allowed", "SQLITE_AUTH"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH and DETACH are not allowed", None),
        ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode is not allowed", None),
        ("", "did not contain a statement", None),
        ("-- only a comment", "did not contain a statement", None),
        ("SELECT 1; SELECT 2", "only one SQL statement", None),
        ("SELECT 1\x00", "NUL character", None),
    ]
    for sql, message, code in cases:
        failed = await error(app, sql)
        assert message in failed["error"], (sql, failed)
        if code is not None:
            assert failed["code"] == code, (sql, failed)
    wrong_count = await error(app, "SELECT ?, ?", 1)
    assert "bindings" in wrong_count["error"]
    # SQLite itself ends the transaction here; the call is rolled back, nothing resets.
    await value(app, "CREATE TABLE r (x UNIQUE)", mode="run")
    await value(app, "INSERT INTO r VALUES (1)", mode="run")
    rolled = await error(app, "INSERT OR ROLLBACK INTO r VALUES (1)")
    assert "UNIQUE constraint failed" in rolled["error"]
    assert await value(app, "SELECT count(*) AS n FROM r", mode="first", column="n") == 1
    everyone = await value(app, "SELECT name FROM users", mode="raw")
    assert everyone == [["ada"]]


async def test_hostile_bound_values_fail_before_anything_is_sent(app: TestApp) -> None:
    db = app.env.DB
    statement = db.prepare("SELECT ?")
    for bad in ({1}, {"a": 1}, [1], object(), 1j, Path("/")):
        with pytest.raises(TypeError, match="D1 binds None, bool, int, float, str and bytes"):
            statement.bind(bad)
    for bad_value, message in (
        (2**63, "64-bit"),
        (-(2**63) - 1, "64-bit"),
        (float("nan"), "NaN"),
        ("\ud800", "not valid Unicode"),
    ):
        with pytest.raises(ValueError, match=message):
            statement.bind(bad_value)
    with pytest.raises(TypeError):
        db.prepare(b"SELECT 1")
    with pytest.raises(TypeError):
        await statement.first(1)
    with pytest.raises(TypeError):
        await db.batch("SELECT 1")
    with pytest.raises(TypeError, match="item 1 is a str"):
        await db.batch([db.prepare("SELECT 1"), "SELECT 1"])
    with pytest.raises(ValueError, match="another database"):
        await db.batch([app.env.OTHER.prepare("SELECT 1")])
    with pytest.raises(TypeError):
        await db.exec(None)
    # Over HTTP the app answers 422 with the binding's message.
    reply = await query(app, "SELECT ?", 2**64)
    assert reply.status_code == 422 and "64-bit" in reply.json()["error"]


async def test_huge_sql_and_rows_within_and_beyond_the_limits(app: TestApp) -> None:
    limits = app.config.limits
    # Huge rows inside the limits succeed, whole.
    big = "x" * (limits.value_bytes - 100)
    await value(app, "CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT)", mode="run")
    await value(app, "INSERT INTO big (body) VALUES (?)", big, mode="run")
    await value(app, "INSERT INTO big (body) VALUES (?)", big, mode="run")
    assert await value(app, "SELECT body FROM big WHERE id = 1", mode="first") == {"body": big}
    # A value over value_bytes is refused naming the limit, and nothing is written.
    over = await error(app, "INSERT INTO big (body) VALUES (?)", "y" * (limits.value_bytes + 1))
    assert over["limit"] == "value_bytes" and "value_bytes" in over["error"]
    size = (await value(app, "SELECT 1", mode="run"))["meta"]["size_after"]
    assert size > 2 * len(big)  # two big rows, none of the refused one
    grown = await error(app, "UPDATE big SET body = body || body WHERE id = 1")
    assert grown["limit"] == "value_bytes"
    # The SQL text and the count of parameters have limits of their own.
    long_sql = "SELECT 1" + " " * limits.sql_statement_bytes
    assert (await error(app, long_sql))["limit"] == "sql_statement_bytes"
    many = "SELECT " + ", ".join("?" * (limits.sql_params + 1))
    assert (await error(app, many, *range(limits.sql_params + 1)))["limit"] == "sql_params"
    # A result larger than one message: 413 naming message_bytes; the database carries on.
    rows = (limits.message_bytes // (limits.value_bytes - 100)) + 1
    huge = await query(
        app,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " SELECT i, (SELECT body FROM big WHERE id = 1) AS body FROM n",
        rows,
    )
    assert huge.status_code == 413 and huge.json()["limit"] == "message_bytes"
    count = "SELECT count(*) AS n FROM big"
    assert await value(app, count, mode="first", column="n") == 2


# ---- batch and exec ---------------------------------------------------------------------


async def test_batch_is_all_or_nothing(app: TestApp) -> None:
    insert = "INSERT INTO users (name) VALUES (?)"
    ok = await app.http.post(
        "/batch",
        json={
            "statements": [
                {"sql": insert, "params": ["a"]},
                {"sql": insert, "params": ["b"]},
                {"sql": "SELECT name FROM users ORDER BY name"},
            ]
        },
    )
    assert ok.status_code == 200, ok.text
    results = ok.json()["value"]
    assert [r["meta"]["last_row_id"] for r in results[:2]] == [1, 2]
    assert results[2]["results"] == [{"name": "a"}, {"name": "b"}]
    # The second statement fails: the first (and the third) leave no trace.
    failed = await app.http.post(
        "/batch",
        json={
            "statements": [
                {"sql": insert, "params": ["c"]},
                {"sql": insert, "params": ["a"]},
                {"sql": insert, "params": ["d"]},
            ]
        },
    )
    assert failed.status_code == 400
    assert failed.json()["statement"] == 1
    assert "UNIQUE constraint failed: users.name" in failed.json()["error"]
    bad_sql = await app.http.post(
        "/batch",
        json={"statements": [{"sql": insert, "params": ["e"]}, {"sql": "DROP TABLE nope"}]},
    )
    assert bad_sql.status_code == 400 and "no such table" in bad_sql.json()["error"]
    names = await value(app, "SELECT name FROM users ORDER BY name", mode="raw")
    assert names == [["a"], ["b"]]
    assert await app.env.DB.batch([]) == []
    # A big batch is still one call and one transaction.
    many = [app.env.DB.prepare(insert).bind(f"m{i}") for i in range(500)]
    results = await app.env.DB.batch(many)
    assert [r.meta.last_row_id for r in results] == list(range(3, 503))


async def test_exec_runs_several_statements_atomically(app: TestApp) -> None:
    script = """
        -- a schema with a trigger, whose body holds semicolons
        CREATE TABLE log (msg TEXT);
        CREATE TRIGGER users_log AFTER INSERT ON users BEGIN
            INSERT INTO log VALUES ('added ' || new.name);
        END;
        INSERT INTO users (name) VALUES ('x'); /* trailing comment */
    """
    done = await app.http.post("/exec", content=script)
    assert done.status_code == 200 and done.json()["count"] == 3
    assert await value(app, "SELECT msg FROM log", mode="raw") == [["added x"]]
    broken = "INSERT INTO users (name) VALUES ('y'); INSERT INTO nowhere VALUES (1)"
    failed = await app.http.post("/exec", content=broken)
    assert failed.status_code == 400 and failed.json()["statement"] == 1
    assert "no such table: nowhere" in failed.json()["error"]
    assert await value(app, "SELECT name FROM users", mode="raw") == [["x"]]
    empty = await app.http.post("/exec", content="  -- nothing ")
    assert empty.status_code == 400 and "no SQL statement" in empty.json()["error"]


# ---- migrations -------------------------------------------------------------------------


def db_cli(app_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAYDO, "db", "migrations", *args, "--dir", str(app_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=quiet_env(),
    )


async def test_migrations_list_and_apply_through_the_cli(app_copy: AppCopy) -> None:
    app_dir = app_copy("d1")
    listed = db_cli(app_dir, "list", "DB")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "0001_create_users.sql\tpending",
        "0002_add_email.sql\tpending",
    ]
    applied = db_cli(app_dir, "apply", "DB")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == [
        "applied 0001_create_users.sql",
        "applied 0002_add_email.sql",
    ]
    assert all("\tapplied 20" in line for line in db_cli(app_dir, "list", "DB").stdout.splitlines())
    assert db_cli(app_dir, "apply", "DB").stdout.strip() == "no pending migrations"

    # A migration whose second statement fails: none of it applies, the earlier ones stay.
    (app_dir / "migrations" / "0003_broken.sql").write_text(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY);\nINSERT INTO nowhere VALUES (1);\n"
    )
    (app_dir / "migrations" / "0004_after.sql").write_text("CREATE TABLE later (x);\n")
    broken = db_cli(app_dir, "apply", "DB")
    assert broken.returncode == 1
    assert "0003_broken.sql failed at statement 2" in broken.stderr
    assert "no such table: nowhere" in broken.stderr
    statuses = {s.migration.name: s.applied_at for s in list_migrations(app_dir, "DB")}
    assert statuses["0002_add_email.sql"] is not None
    assert statuses["0003_broken.sql"] is None and statuses["0004_after.sql"] is None

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        tables = await app.env.DB.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).raw()
        names = [t[0] for t in tables if not t[0].startswith("_raydo_")]
        assert names == [MIGRATIONS_TABLE, "sqlite_sequence", "users"]  # no "orders"
        recorded = await app.env.DB.prepare(f"SELECT name FROM {MIGRATIONS_TABLE}").raw()
        assert recorded == [["0001_create_users.sql"], ["0002_add_email.sql"]]
    # The database is an object's file like any other: `raydo objects` sees inside it.
    shown = subprocess.run(
        [RAYDO, "objects", "show", "_D1", "main", "--dir", str(app_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=quiet_env(),
    )
    assert shown.returncode == 0, shown.stderr
    assert '"users": 0' in shown.stdout and f'"{MIGRATIONS_TABLE}": 2' in shown.stdout

    # Mistakes are errors with exit code 2, before anything is applied.
    unknown = db_cli(app_dir, "list", "NOPE")
    assert unknown.returncode == 2 and "no [[d1_databases]] binding 'NOPE'" in unknown.stderr
    assert "known: DB, OTHER" in unknown.stderr
    (app_dir / "migrations" / "0003_broken.sql").write_text("BEGIN;\nCREATE TABLE t (x);\nCOMMIT;")
    transaction = db_cli(app_dir, "apply", "DB")
    assert transaction.returncode == 2 and "BEGIN is not allowed" in transaction.stderr
    (app_dir / "migrations" / "create_more.sql").write_text("CREATE TABLE more (x);")
    misnamed = db_cli(app_dir, "apply", "DB")
    assert misnamed.returncode == 2 and "create_more.sql does not start with" in misnamed.stderr
    missing = db_cli(app_dir.parent, "list", "DB")
    assert missing.returncode == 2
    # A file that is not a database: a clear error, not a traceback.
    other = database_file(load_config(app_dir), "OTHER")
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(b"not a database" * 100)
    for action in ("list", "apply"):
        garbage = db_cli(app_dir, action, "OTHER")
        assert garbage.returncode in (1, 2) and "file is not a database" in garbage.stderr
        assert "Traceback" not in garbage.stderr


def test_migrations_apply_in_numeric_order_each_once(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    # Numeric order, not text order: 2 before 10; a non-.sql file is ignored.
    for number in (10, 2, 1, 11, 3, 4, 5, 6, 7, 8, 9, 12):
        (folder / f"{number}_step.sql").write_text(
            f"INSERT INTO steps VALUES ({number});" if number > 1 else "CREATE TABLE steps (n);"
        )
    (folder / "README.md").write_text("not a migration")
    names = [m.name for m in find_migrations(folder)]
    assert names == [f"{n}_step.sql" for n in range(1, 13)]
    (tmp_path / "raydo.toml").write_text(
        'name = "m"\nmain = "app:app"\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "d"\n'
    )
    # Twelve at once: the CLI's progress bar (drawn on terminals only) and a line for each.
    cli = db_cli(tmp_path, "apply", "DB")
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.splitlines() == [f"applied {name}" for name in names]
    listed = db_cli(tmp_path, "list", "DB")
    assert listed.returncode == 0 and listed.stdout.count("\tapplied ") == 12
    (folder / "13_step.sql").write_text("INSERT INTO steps VALUES (13);")
    seen: list[str] = []
    applied = apply_migrations(tmp_path, "DB", progress=lambda m: seen.append(m.name))
    assert applied == seen == ["13_step.sql"]
    assert apply_migrations(tmp_path, "DB") == []
    import sqlite3

    path = database_file(load_config(tmp_path), "DB")
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT n FROM steps")] == list(range(2, 14))
    (folder / "02_again.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="same number 2"):
        find_migrations(folder)
    with pytest.raises(MigrationError, match="no migrations folder"):
        find_migrations(tmp_path / "absent")


async def test_migrations_applied_beside_a_running_app_are_seen_at_once(
    app: TestApp, app_dir: Path
) -> None:
    db = app.env.DB
    await db.prepare("INSERT INTO users (name) VALUES ('ada')").run()
    (app_dir / "migrations" / "0003_add_age.sql").write_text(
        "ALTER TABLE users ADD COLUMN age INTEGER NOT NULL DEFAULT 7;"
    )
    # The database object keeps its connection open; SQLite notices the new schema.
    assert await asyncio.to_thread(apply_migrations, app_dir, "DB") == ["0003_add_age.sql"]
    assert await db.prepare("SELECT name, age FROM users").first() == {
        "name": "ada",
        "age": 7,
    }
    await db.prepare("INSERT INTO users (name, age) VALUES ('bob', 40)").run()
    assert await db.prepare("SELECT sum(age) AS s FROM users").first("s") == 47


# ---- two gateway processes --------------------------------------------------------------


@pytest.mark.ray
async def test_two_gateway_processes_write_one_database(
    app_copy: AppCopy, gateway: Callable[..., Any]
) -> None:
    app_dir = app_copy("d1")
    apply_migrations(app_dir, "DB")
    first, second = gateway(app_dir), gateway(app_dir)
    per_client = 60

    async def writer(url: str, prefix: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:

            async def one(i: int) -> int:
                reply = await http.post(
                    "/query",
                    json={
                        "sql": "INSERT INTO users (name) VALUES (?)",
                        "params": [f"{prefix}{i}"],
                        "mode": "run",
                    },
                )
                assert reply.status_code == 200, reply.text
                row_id: int = reply.json()["value"]["meta"]["last_row_id"]
                return row_id

            return list(await asyncio.gather(*(one(i) for i in range(per_client))))

    ids_a, ids_b = await asyncio.gather(writer(first.url, "a"), writer(second.url, "b"))
    # One writer: every insert got its own row id, with none lost or repeated.
    assert sorted(ids_a + ids_b) == list(range(1, 2 * per_client + 1))
    async with httpx.AsyncClient(base_url=second.url, timeout=60) as http:
        reply = await http.post(
            "/query", json={"sql": "SELECT name FROM users ORDER BY name", "mode": "raw"}
        )
    names = {row[0] for row in reply.json()["value"]}
    assert names == {f"{p}{i}" for p in "ab" for i in range(per_client)}
    # An object in its own Ray host reaches the database's host through its env.
    async with httpx.AsyncClient(base_url=first.url, timeout=60) as http:
        added = await http.post("/users/from-an-object")
    assert added.status_code == 200 and added.json()["id"] == 2 * per_client + 1
