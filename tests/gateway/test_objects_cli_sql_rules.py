"""``raydo objects sql`` and ``import`` under the rules of user SQL: neither writes a file
outside the storage folder, and an import refuses what an export never contains (issue 12,
item 4)."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from pathlib import Path

import pytest

from raydo.gateway import inspection
from raydo.gateway.config import AppConfig, load_config
from raydo.gateway.testing import CONFIGURED_STORAGE, start_app
from raydo.storage.files import connect_read_only, refusal_message
from tests.cluster import RAYDO, REPO, copy_app, quiet_env


@pytest.fixture
async def app(tmp_path: Path, anyio_backend: str) -> Path:
    """The counter app with one object, ``a``, that has a KV pair and a table of its own."""
    app_dir = copy_app(REPO / "examples" / "counter", tmp_path / "app")
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as running:
        await running.http.post("/counter/a/increment")
        await running.sql("COUNTER", "a", "CREATE TABLE notes (t TEXT)")
    return app_dir


@pytest.fixture
def config(app: Path) -> AppConfig:
    return load_config(app)


def files_outside(config: AppConfig, root: Path) -> set[Path]:
    storage = Path(config.storage).resolve()
    return {p for p in root.rglob("*") if p.is_file() and storage not in p.resolve().parents}


@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize(
    "query",
    [
        "VACUUM INTO '{out}'",
        "ATTACH DATABASE '{out}' AS elsewhere",
    ],
)
def test_sql_writes_no_file_elsewhere(
    config: AppConfig, tmp_path: Path, query: str, write: bool
) -> None:
    out = tmp_path / "out" / "copy.sqlite"
    out.parent.mkdir()
    target = inspection.object_id(config, "COUNTER", "a")
    with pytest.raises(inspection.InspectionError):
        inspection.run_sql(config, target, query.format(out=out), write=write)
    assert not out.exists()


@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize(
    "query",
    [
        "SELECT fts3_tokenizer('simple')",
        "SELECT sql FROM sqlite_stmt",
        "SELECT load_extension('x')",
    ],
)
def test_sql_from_the_cli_has_user_sqls_rules(config: AppConfig, query: str, write: bool) -> None:
    target = inspection.object_id(config, "COUNTER", "a")
    with pytest.raises(inspection.InspectionError, match=r"not allowed|not authorized|prohibited"):
        inspection.run_sql(config, target, query, write=write)


@pytest.mark.parametrize(
    "query, rule",
    [
        ("DELETE FROM _raydo_kv", "tables named _raydo_\\* belong to raydo"),
        ("PRAGMA journal_mode=DELETE", "PRAGMA journal_mode is not allowed \\(allowed: "),
        ("SELECT load_extension('x')", "the function load_extension is not allowed"),
    ],
)
def test_a_read_only_refusal_names_the_rule_not_only_sqlites_word(
    config: AppConfig, query: str, rule: str
) -> None:
    target = inspection.object_id(config, "COUNTER", "a")
    with pytest.raises(inspection.InspectionError, match=rule):
        inspection.run_sql(config, target, query)


def test_on_one_connection_the_next_error_is_its_own_not_the_last_refusals(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as made:
        made.execute("CREATE TABLE notes (t TEXT)")
    conn = connect_read_only(path)
    try:
        with pytest.raises(sqlite3.DatabaseError) as refused:
            conn.execute("ATTACH 'y' AS y")
        assert "an object owns exactly one database" in refusal_message(conn, refused.value)
        with pytest.raises(sqlite3.OperationalError) as other:
            conn.execute("SELECT nope FROM notes")
        assert refusal_message(conn, other.value) == "no such column: nope"
    finally:
        conn.close()


def test_reading_raydos_tables_needs_no_write_and_writing_them_is_refused(
    config: AppConfig,
) -> None:
    target = inspection.object_id(config, "COUNTER", "a")
    names, rows = inspection.run_sql(config, target, "SELECT key FROM _raydo_kv")
    assert names == ["key"] and rows == [("n",)]
    for query in (
        "DELETE FROM _raydo_kv",
        "CREATE TRIGGER spy AFTER INSERT ON _raydo_kv BEGIN SELECT 1; END",
        "ALTER TABLE notes RENAME TO/**/_raydo_x",
    ):
        with pytest.raises(inspection.InspectionError, match="_raydo_"):
            inspection.run_sql(config, target, query, write=True)
    assert inspection.run_sql(config, target, "SELECT count(*) FROM _raydo_kv")[1] == [(1,)]
    assert inspection.run_sql(config, target, "INSERT INTO notes VALUES ('x')", write=True)
    assert inspection.run_sql(config, target, "SELECT t FROM notes")[1] == [("x",)]


KV = "CREATE TABLE _raydo_kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
META = "CREATE TABLE _raydo_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;"


@pytest.mark.parametrize(
    "body, message",
    [
        ("ATTACH DATABASE '{out}' AS e; CREATE TABLE e.t (x);", "ATTACH"),
        ("CREATE TABLE t (x); VACUUM INTO '{out}';", r"VACUUM|transaction|attached"),
        (f"{META} INSERT INTO _raydo_meta VALUES ('alarm', 'soon');", "alarm"),
        (
            f"{META} INSERT INTO _raydo_meta VALUES ('alarm', 1);"
            " UPDATE _raydo_meta SET value = 2;",
            "_raydo_meta",
        ),
        (
            f"{KV} CREATE TABLE spy (k);"
            " CREATE TRIGGER copy AFTER INSERT ON _raydo_kv BEGIN"
            " INSERT INTO spy VALUES (new.key); END;",
            "_raydo_kv",
        ),
        (
            "CREATE TABLE _raydo_kv (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;",
            "not raydo's",
        ),
        ("CREATE TABLE t (x); CREATE VIEW v AS SELECT * FROM _raydo_kv;", "view 'v'"),
        ("CREATE TABLE t AS SELECT fts3_tokenizer('simple') AS p;", "fts3_tokenizer"),
        ("PRAGMA writable_schema=ON;", "writable_schema"),
        ("CREATE TABLE t (x); COMMIT; CREATE TABLE u (y);", "transaction"),
        ("CREATE TABLE t (x); ALTER TABLE t RENAME TO/**/_raydo_sockets;", "_raydo_sockets"),
    ],
)
def test_import_refuses_what_an_export_never_contains(
    config: AppConfig, tmp_path: Path, body: str, message: str
) -> None:
    out = tmp_path / "out" / "evil.sqlite"
    out.parent.mkdir()
    dump = f"BEGIN TRANSACTION;\n{body.format(out=out)}\nCOMMIT;\n"
    target = inspection.object_id(config, "COUNTER", "fresh")
    with pytest.raises(inspection.InspectionError, match=message):
        inspection.import_object(config, target, dump)
    assert not out.exists()
    assert not inspection.object_path(config, target).exists()
    assert not list(inspection.object_path(config, target).parent.glob("*import*"))


def test_an_export_imports_whole(config: AppConfig, app: Path) -> None:
    source = inspection.object_id(config, "COUNTER", "a")
    dump = "".join(inspection.export_object(config, source, "sql"))
    copy = inspection.object_id(config, "COUNTER", "a2")
    inspection.import_object(config, copy, dump)
    shown = inspection.show_object(config, copy)
    assert shown["kv_pairs"] == 1 and shown["tables"] == {"notes": 0}
    assert shown["name"] == "a2"


def test_the_cli_says_why_an_import_is_refused(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere.sqlite"
    result = subprocess.run(
        [RAYDO, "objects", "import", "COUNTER", "evil", "-"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
        env=quiet_env(),
        input=f"BEGIN TRANSACTION;\nATTACH DATABASE '{out}' AS e;\nCOMMIT;\n",
    )
    assert result.returncode == 2
    assert "ATTACH" in result.stderr
    assert not out.exists()
