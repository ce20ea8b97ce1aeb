"""The SQL rules checked on what a statement would do, not on its text: functions and
virtual-table modules by allow-list, SQLite's internals out of reach, raydo's own statements
out of reach, and no ``_raydo_*`` object created, renamed or named by any spelling.

Each test here is one finding of the security review (issue 12, items 1 to 3)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from raydo.storage import StorageCore, TransactionError
from raydo.storage.errors import SqlError
from tests.cluster import REPO
from tests.storage.conftest import StandaloneStorage


def schema(storage: StandaloneStorage) -> list[tuple[str, str, str, str | None]]:
    rows = storage.core.internal(
        f"{storage.core.tag}SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    ).fetchall()
    return [tuple(row) for row in rows]


# ---- 1. functions that touch memory or files ----------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "SELECT fts3_tokenizer('simple')",
        "SELECT fts3_tokenizer('evil', x'4141414141414141')",
        "SELECT load_extension('/tmp/nope.so')",
        "SELECT rtreenode(2, x'00')",
        "SELECT fts5(NULL)",
        "SELECT sqlite_log(1, 'x')",
        "SELECT upper(fts3_tokenizer('porter'))",
        "SELECT 1 WHERE fts3_tokenizer('simple') IS NOT NULL",
    ],
)
def test_functions_outside_the_allow_list_are_refused(
    storage: StandaloneStorage, query: str
) -> None:
    with pytest.raises(SqlError, match=r"the function \S+ is not allowed") as info:
        storage.sql.exec(query)
    assert info.value.sqlite_errorname == "SQLITE_AUTH"


def test_a_function_inside_a_trigger_or_view_is_checked_where_it_runs(
    storage: StandaloneStorage,
) -> None:
    storage.sql.exec("CREATE TABLE t (x)")
    storage.sql.exec("CREATE VIEW leak AS SELECT fts3_tokenizer('simple') AS p")
    with pytest.raises(SqlError, match="fts3_tokenizer"):  # refused as unsafe in the schema
        storage.sql.exec("SELECT * FROM leak")
    storage.sql.exec(
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT fts3_tokenizer('simple'); END"
    )
    with pytest.raises(SqlError, match="fts3_tokenizer is not allowed"):
        storage.sql.exec("INSERT INTO t VALUES (1)")


def test_the_functions_apps_use_still_work(storage: StandaloneStorage) -> None:
    row = storage.sql.exec(
        "SELECT upper('a') AS u, json_extract('{\"a\": 2}', '$.a') AS j, '[1]' ->> 0 AS arrow,"
        " round(sqrt(16.0)) AS m, date('2020-01-02') AS d, length(randomblob(4)) AS r,"
        " printf('%d', 3) AS p, coalesce(NULL, 1) AS c, iif(1, 'y', 'n') AS i,"
        " 'abc' LIKE 'a%' AS l, 'abc' GLOB 'a*' AS g"
    ).one()
    assert row == {
        "u": "A",
        "j": 2,
        "arrow": 1,
        "m": 4.0,
        "d": "2020-01-02",
        "r": 4,
        "p": "3",
        "c": 1,
        "i": "y",
        "l": 1,
        "g": 1,
    }
    storage.sql.exec("CREATE TABLE n (v INTEGER)")
    storage.sql.exec("INSERT INTO n VALUES (1), (2), (3)")
    window = storage.sql.exec(
        "SELECT sum(v) OVER (ORDER BY v) AS s, row_number() OVER () AS r, group_concat(v)"
        " OVER () AS g FROM n ORDER BY v"
    ).fetchall()
    assert [w["s"] for w in window] == [1, 3, 6]
    rows = storage.sql.exec("SELECT value FROM json_each('[1, 2]')").fetchall()
    assert rows == [{"value": 1}, {"value": 2}]


def test_the_tokenizer_crash_does_not_reach_sqlite(tmp_path: Path) -> None:
    """The published pair: register a tokenizer at a chosen address, then use it. On a build
    with the tokenizer function enabled it segfaulted the process; run it in a child."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from raydo.storage import ObjectStorage, SqlError, StorageCore

        storage = ObjectStorage(StorageCore(Path(sys.argv[1])))
        for query in (
            "SELECT fts3_tokenizer('evil', x'4141414141414141')",
            "CREATE VIRTUAL TABLE f USING fts3(a, tokenize=evil)",
            "INSERT INTO f VALUES ('boom')",
        ):
            try:
                storage.sql.exec(query)
            except SqlError as exc:
                print("refused:", exc)
        print("alive")
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "o.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert child.returncode == 0, (child.returncode, child.stderr)
    assert child.stdout.count("refused:") == 3
    assert "fts3_tokenizer is not allowed" in child.stdout
    assert "alive" in child.stdout


# ---- virtual tables -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "CREATE VIRTUAL TABLE s USING dbstat",
        "CREATE VIRTUAL TABLE s USING fts3(a)",
        "CREATE VIRTUAL TABLE s USING fts4(a)",
        "CREATE VIRTUAL TABLE s USING fts3tokenize(simple)",
        "CREATE VIRTUAL TABLE _raydo_x USING dbstat",
        "CREATE VIRTUAL TABLE _raydo_x USING fts5(a)",
        'CREATE VIRTUAL TABLE "_RAYDO_sockets" USING rtree(id, a, b)',
    ],
)
def test_virtual_tables_outside_the_allow_list_are_refused(
    storage: StandaloneStorage, query: str
) -> None:
    before = schema(storage)
    with pytest.raises(SqlError, match="not allowed"):
        storage.sql.exec(query)
    assert schema(storage) == before


def test_allowed_virtual_tables_work(storage: StandaloneStorage) -> None:
    storage.sql.exec("CREATE VIRTUAL TABLE docs USING fts5(body)")
    storage.sql.exec("INSERT INTO docs VALUES ('the quick brown fox'), ('lazy dogs')")
    found = storage.sql.exec(
        "SELECT highlight(docs, 0, '[', ']') AS h FROM docs WHERE docs MATCH 'quick'"
        " ORDER BY bm25(docs)"
    ).fetchall()
    assert found == [{"h": "the [quick] brown fox"}]
    storage.sql.exec("CREATE VIRTUAL TABLE words USING fts5vocab(docs, row)")
    assert storage.sql.exec("SELECT count(*) AS n FROM words").one() == {"n": 6}
    storage.sql.exec("CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1)")
    storage.sql.exec("INSERT INTO boxes VALUES (1, 0, 10)")
    assert storage.sql.exec("SELECT id FROM boxes WHERE x0 < 5").one() == {"id": 1}
    storage.sql.exec("DROP TABLE boxes")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT sql FROM sqlite_stmt",
        "SELECT count(*) FROM sqlite_stmt",
        "SELECT * FROM main.sqlite_stmt",
        "SELECT name FROM dbstat",
        "SELECT * FROM t WHERE x IN (SELECT ncol FROM sqlite_stmt)",
    ],
)
def test_sqlites_internals_cannot_be_read(storage: StandaloneStorage, query: str) -> None:
    storage.sql.exec("CREATE TABLE t (x)")
    with pytest.raises(SqlError, match="is not allowed: it shows SQLite's internals"):
        storage.sql.exec(query)


# ---- 2. raydo's own statements ------------------------------------------------------------


def test_raydos_prepared_statements_cannot_be_sent_again(storage: StandaloneStorage) -> None:
    storage.put("k", "v")
    assert storage.get("k") == "v"
    storage.put_many({"k": "v"})
    storage.commit()
    tag = storage.core.tag
    for text, params in [
        (f"{tag}SELECT value FROM _raydo_kv WHERE key = ?", ("k",)),
        (
            f"{tag}INSERT INTO _raydo_kv (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            ("k", b"\xc0"),
        ),
        (f"{tag}INSERT OR REPLACE INTO _raydo_meta (key, value) VALUES ('alarm', ?)", (1,)),
        (f"{tag}COMMIT", ()),
    ]:
        with pytest.raises(SqlError, match="raydo's own statements"):
            storage.sql.exec(text, *params)
    assert storage.get("k") == "v"
    assert storage.get_alarm() is None


def test_any_internal_tag_is_refused_not_only_this_processs(storage: StandaloneStorage) -> None:
    other = "/*raydo 0123456789abcdef*/ "
    assert other != StorageCore.tag
    with pytest.raises(SqlError, match="raydo's own statements"):
        storage.sql.exec(f"{other}SELECT 1")
    with pytest.raises(SqlError, match="raydo's own statements"):
        storage.sql.exec(f"SELECT 1; {StorageCore.tag}SELECT 2")
    # an ordinary comment is no tag
    assert storage.sql.exec("/* raydo is fine */ SELECT 1 AS one").one() == {"one": 1}


# ---- 3. raydo's names by any spelling -----------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "ALTER TABLE t RENAME TO/**/_raydo_x",
        "ALTER TABLE t RENAME TO\n_raydo_x",
        'ALTER TABLE t RENAME TO /* a */ "_RAYDO_x"',
        "ALTER TABLE t RENAME TO `_raydo_kv2`",
        "ALTER TABLE t RENAME TO [_Raydo_y]",
        "ALTER TABLE t RENAME COLUMN a TO/**/_raydo_c",
        "ALTER TABLE t RENAME a TO _raydo_c",
        'CREATE INDEX "_RAYDO_i" ON t (a)',
    ],
)
def test_no_spelling_gives_a_table_raydos_name(storage: StandaloneStorage, query: str) -> None:
    storage.sql.exec("CREATE TABLE t (a)")
    storage.put("keep", 1)
    storage.commit()
    before = schema(storage)
    with pytest.raises(SqlError, match="_raydo_"):
        storage.sql.exec(query)
    storage.rollback()  # what the host does with an event that raised
    assert schema(storage) == before
    assert storage.get("keep") == 1


def test_a_renamed_trigger_never_runs_inside_raydos_own_writes(
    storage: StandaloneStorage,
) -> None:
    """A user table with a trigger, renamed to ``_raydo_sockets`` before raydo made it, ran its
    trigger inside raydo's trusted insert of every accepted socket."""
    storage.sql.exec("CREATE TABLE spy (sid, gateway, tags, attachment)")
    storage.sql.exec("CREATE TABLE stolen (sid)")
    storage.sql.exec(
        "CREATE TRIGGER copy AFTER INSERT ON spy BEGIN INSERT INTO stolen VALUES (new.sid); END"
    )
    storage.commit()
    with pytest.raises(SqlError, match="_raydo_"):
        storage.sql.exec("ALTER TABLE spy RENAME TO/**/_raydo_sockets")
    storage.rollback()
    assert not storage.core.table_exists("_raydo_sockets")
    assert [row[1] for row in schema(storage) if row[0] == "trigger"] == ["copy"]


def test_the_event_cannot_go_on_after_a_refused_schema_change(
    storage: StandaloneStorage,
) -> None:
    storage.sql.exec("CREATE TABLE t (a)")
    storage.commit()
    storage.put("pending", 1)
    with pytest.raises(SqlError, match="the event's writes were rolled back"):
        storage.sql.exec("ALTER TABLE t RENAME TO/**/_raydo_x")
    with pytest.raises(TransactionError):
        storage.get("pending")
    storage.rollback()
    assert storage.get("pending") is None
    assert storage.sql.exec("SELECT count(*) AS n FROM t").one() == {"n": 0}


@pytest.mark.parametrize(
    "query",
    [
        "CREATE VIEW peek AS SELECT * FROM _raydo_kv",
        'CREATE VIEW peek AS SELECT * FROM main."_RAYDO_KV"',
        "CREATE VIEW peek AS SELECT * FROM [_raydo_meta]",
        "CREATE TRIGGER wipe AFTER INSERT ON t BEGIN DELETE FROM _raydo_kv; END",
        "CREATE TRIGGER wipe AFTER INSERT ON t BEGIN DELETE FROM `_raydo_kv`; END",
        "CREATE TABLE child (k REFERENCES _raydo_kv (key) ON DELETE CASCADE)",
        "CREATE TABLE odd (_raydo_col)",
    ],
)
def test_views_triggers_and_tables_that_name_raydos_tables_are_refused(
    storage: StandaloneStorage, query: str
) -> None:
    storage.sql.exec("CREATE TABLE t (a)")
    storage.put("secret", "value")
    storage.commit()
    before = schema(storage)
    with pytest.raises(SqlError, match="_raydo_"):
        storage.sql.exec(query)
    storage.rollback()
    assert schema(storage) == before
    assert storage.list() == {"secret": "value"}


def test_names_that_only_contain_raydo_are_the_users(storage: StandaloneStorage) -> None:
    storage.sql.exec("CREATE TABLE my_raydo_notes (x)")
    storage.sql.exec("CREATE VIEW v AS SELECT x AS note_raydo_x FROM my_raydo_notes")
    storage.sql.exec("ALTER TABLE my_raydo_notes RENAME TO raydo_notes")
    assert storage.sql.exec("SELECT count(*) AS n FROM raydo_notes").one() == {"n": 0}


def test_a_cached_ddl_statement_is_checked_each_time_it_runs(
    storage: StandaloneStorage,
) -> None:
    """SQLite authorizes a statement when it is prepared, and the rollback of a refused rename
    puts the schema back as it was, so the cached statement runs again without a new
    prepare: the schema check must not depend on the authorizer having seen it."""
    storage.sql.exec("CREATE TABLE t (a)")
    storage.commit()
    before = schema(storage)
    rename = "ALTER TABLE t RENAME TO/**/_raydo_x"
    for _ in range(3):
        with pytest.raises(SqlError, match="_raydo_"):
            storage.sql.exec(rename)
        storage.rollback()
        assert schema(storage) == before
