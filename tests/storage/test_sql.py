"""``ctx.storage.sql.exec``: cursors, statement splitting, refusals and limits."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from raydo.storage import Cursor, TransactionError
from raydo.storage.errors import SqlError
from raydo.storage.limits import LimitExceeded, Limits
from raydo.storage.sql import split_statements
from tests.storage.conftest import StandaloneStorage

MakeStorage = Callable[..., StandaloneStorage]


@pytest.fixture
def people(storage: StandaloneStorage) -> StandaloneStorage:
    storage.sql.exec("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)")
    storage.sql.exec("INSERT INTO people (name, age) VALUES ('ann', 31), ('bob', 42)")
    return storage


def external_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


# ---- cursors ----------------------------------------------------------------------------


def test_exec_returns_a_cursor(storage: StandaloneStorage) -> None:
    cursor = storage.sql.exec("SELECT 1 AS one")
    assert isinstance(cursor, Cursor)


def test_iteration_gives_dicts(people: StandaloneStorage) -> None:
    cursor = people.sql.exec("SELECT name, age FROM people ORDER BY id")
    assert [row for row in cursor] == [{"name": "ann", "age": 31}, {"name": "bob", "age": 42}]
    assert cursor.fetchall() == [{"name": "ann", "age": 31}, {"name": "bob", "age": 42}]


def test_raw_gives_tuples(people: StandaloneStorage) -> None:
    rows = list(people.sql.exec("SELECT id, name FROM people ORDER BY id").raw())
    assert rows == [(1, "ann"), (2, "bob")]
    assert all(type(row) is tuple for row in rows)


def test_raw_keeps_duplicate_column_names(storage: StandaloneStorage) -> None:
    cursor = storage.sql.exec("SELECT 1 AS a, 2 AS a")
    assert cursor.column_names == ["a", "a"]
    assert list(cursor.raw()) == [(1, 2)]


def test_column_names(people: StandaloneStorage) -> None:
    assert people.sql.exec("SELECT id, name AS who FROM people").column_names == ["id", "who"]
    empty = people.sql.exec("SELECT age, name FROM people WHERE 0")
    assert empty.column_names == ["age", "name"]
    assert empty.fetchall() == []
    assert people.sql.exec("UPDATE people SET age = age").column_names == []


def test_one_with_zero_one_and_two_rows(people: StandaloneStorage) -> None:
    assert people.sql.exec("SELECT name FROM people WHERE id = ?", 2).one() == {"name": "bob"}
    with pytest.raises(SqlError, match=r"expected exactly one result.*but got no results"):
        people.sql.exec("SELECT name FROM people WHERE id = 99").one()
    with pytest.raises(SqlError, match=r"expected exactly one result.*but got 2 results"):
        people.sql.exec("SELECT name FROM people").one()
    with pytest.raises(SqlError, match="got 2 results"):
        people.sql.exec("SELECT 1 UNION ALL SELECT 2").one()


def test_rows_read_and_rows_written(storage: StandaloneStorage) -> None:
    storage.sql.exec("CREATE TABLE t (x)")
    storage.sql.exec("INSERT INTO t VALUES (1)")
    insert = storage.sql.exec("INSERT INTO t VALUES (2)")
    assert insert.rows_written == 1
    assert insert.rows_read == 0
    select = storage.sql.exec("SELECT x FROM t")
    assert select.rows_read == 2
    assert select.rows_written == 0
    update = storage.sql.exec("UPDATE t SET x = x + 10")
    assert update.rows_written == 2
    delete = storage.sql.exec("DELETE FROM t WHERE x = 11")
    assert delete.rows_written == 1
    assert storage.sql.exec("SELECT x FROM t").fetchall() == [{"x": 12}]


def test_rows_written_spans_a_multi_statement_query(storage: StandaloneStorage) -> None:
    cursor = storage.sql.exec(
        "CREATE TABLE t (x); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2), (3);"
        " SELECT x FROM t WHERE x < 3"
    )
    assert cursor.rows_written == 3
    assert cursor.rows_read == 2
    assert cursor.fetchall() == [{"x": 1}, {"x": 2}]


def test_kv_writes_do_not_count_as_rows_written(storage: StandaloneStorage) -> None:
    storage.sql.exec("CREATE TABLE t (x)")
    storage.put("k", 1)
    assert storage.sql.exec("SELECT * FROM t").rows_written == 0


def test_cursor_stays_valid_after_commit(people: StandaloneStorage) -> None:
    cursor = people.sql.exec("SELECT name FROM people ORDER BY id")
    people.commit()
    people.sql.exec("DELETE FROM people")
    people.commit()
    assert cursor.fetchall() == [{"name": "ann"}, {"name": "bob"}]


def test_exec_joins_the_event_transaction(people: StandaloneStorage, db_path: Path) -> None:
    people.commit()
    people.sql.exec("INSERT INTO people (name) VALUES ('cy')")
    assert people.sql.exec("SELECT count(*) AS n FROM people").one() == {"n": 3}
    assert external_rows(db_path, "SELECT count(*) FROM people") == [(2,)]
    people.rollback()
    assert people.sql.exec("SELECT count(*) AS n FROM people").one() == {"n": 2}
    people.sql.exec("INSERT INTO people (name) VALUES ('dee')")
    people.commit()
    assert external_rows(db_path, "SELECT name FROM people ORDER BY id")[-1] == ("dee",)


def test_value_types_round_trip(storage: StandaloneStorage) -> None:
    row = storage.sql.exec(
        "SELECT ? AS s, ? AS b, ? AS f, ? AS n, ? AS i", "é", b"\x00", 1.5, None, 7
    )
    assert list(row.raw()) == [("é", b"\x00", 1.5, None, 7)]
    assert storage.sql.exec("SELECT ? AS t", True).one() == {"t": 1}


# ---- statements -------------------------------------------------------------------------


def test_multi_statement_binds_params_to_the_last_and_returns_its_result(
    storage: StandaloneStorage,
) -> None:
    cursor = storage.sql.exec(
        "CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3); SELECT x FROM t WHERE x > ?", 1
    )
    assert cursor.fetchall() == [{"x": 2}, {"x": 3}]
    last_not_select = storage.sql.exec("SELECT x FROM t; DELETE FROM t WHERE x = ?", 3)
    assert last_not_select.column_names == []
    assert last_not_select.fetchall() == []
    assert last_not_select.rows_written == 1
    assert storage.sql.exec("SELECT 1 AS a; SELECT 2 AS b").fetchall() == [{"b": 2}]


def test_placeholder_in_an_earlier_statement_is_an_error(storage: StandaloneStorage) -> None:
    with pytest.raises(SqlError, match="bindings"):
        storage.sql.exec("SELECT ?; SELECT ?", 1)


def test_semicolons_inside_literals_and_comments(storage: StandaloneStorage) -> None:
    cursor = storage.sql.exec(
        'CREATE TABLE t ("a;b" TEXT); -- comment; with semicolon\n'
        "INSERT INTO t VALUES ('x;y'), ('it''s; fine'); /* block; comment */"
        ' SELECT "a;b" AS v FROM t ORDER BY v'
    )
    assert cursor.fetchall() == [{"v": "it's; fine"}, {"v": "x;y"}]


def test_trigger_bodies_are_not_split(storage: StandaloneStorage) -> None:
    storage.sql.exec(
        "CREATE TABLE items (name TEXT);"
        " CREATE TABLE audit (what TEXT);"
        " CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN"
        "   INSERT INTO audit VALUES ('added; ' || new.name);"
        "   INSERT INTO audit VALUES ('done');"
        " END;"
        " INSERT INTO items VALUES ('pen')"
    )
    rows = storage.sql.exec("SELECT what FROM audit ORDER BY rowid").fetchall()
    assert rows == [{"what": "added; pen"}, {"what": "done"}]


def test_trailing_semicolons_and_comments_are_ignored(storage: StandaloneStorage) -> None:
    assert storage.sql.exec("SELECT 1 AS x;").one() == {"x": 1}
    assert storage.sql.exec("SELECT 1 AS x; -- done").one() == {"x": 1}
    assert storage.sql.exec("SELECT 1 AS x; ; /* nothing */ ;").one() == {"x": 1}
    assert storage.sql.exec("-- lead\nSELECT 1 AS x").one() == {"x": 1}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1;", ["SELECT 1;"]),
        ("SELECT 1; SELECT 2", ["SELECT 1;", " SELECT 2"]),
        ("SELECT ';'; SELECT 2;", ["SELECT ';';", " SELECT 2;"]),
        ("SELECT 'a'';b'; SELECT 2", ["SELECT 'a'';b';", " SELECT 2"]),
        ('SELECT "x;y" FROM t; SELECT 2', ['SELECT "x;y" FROM t;', " SELECT 2"]),
        ("SELECT 1 -- ;\n; SELECT 2", ["SELECT 1 -- ;\n;", " SELECT 2"]),
        ("SELECT /* ; */ 1; SELECT 2", ["SELECT /* ; */ 1;", " SELECT 2"]),
        ("SELECT 1; -- tail", ["SELECT 1;", " -- tail"]),
        ("SELECT 1;   ", ["SELECT 1;"]),
        (
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (';');"
            " UPDATE c SET x = 1; END; SELECT 2",
            [
                "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (';');"
                " UPDATE c SET x = 1; END;",
                " SELECT 2",
            ],
        ),
    ],
)
def test_split_statements(query: str, expected: list[str]) -> None:
    assert split_statements(query) == expected
    assert "".join(split_statements(query)).strip() == query.strip()


@pytest.mark.parametrize(
    "query", ["", "   ", "\n\t", "-- only a comment", "/* block */", ";", " ; ;", "; -- c\n;"]
)
def test_query_without_a_statement(storage: StandaloneStorage, query: str) -> None:
    with pytest.raises(SqlError, match="did not contain a statement"):
        storage.sql.exec(query)


def test_syntax_error_carries_sqlites_message(storage: StandaloneStorage) -> None:
    with pytest.raises(SqlError) as info:
        storage.sql.exec("SELEC 1")
    assert 'near "SELEC": syntax error' in str(info.value)
    assert info.value.sqlite_errorname == "SQLITE_ERROR"
    with pytest.raises(SqlError, match="no such table: nope"):
        storage.sql.exec("SELECT * FROM nope")


def test_constraint_error(people: StandaloneStorage) -> None:
    with pytest.raises(SqlError, match="UNIQUE constraint failed") as info:
        people.sql.exec("INSERT INTO people (id, name) VALUES (1, 'dup')")
    assert info.value.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY"
    assert people.sql.exec("SELECT count(*) AS n FROM people").one() == {"n": 2}


def test_query_must_be_str(storage: StandaloneStorage) -> None:
    with pytest.raises(TypeError, match="as a str"):
        storage.sql.exec(b"SELECT 1")  # type: ignore[arg-type]


# ---- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "BEGIN",
        "BEGIN TRANSACTION",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT sp",
        "RELEASE sp",
        "ROLLBACK TO sp",
        "SELECT 1; COMMIT",
    ],
)
def test_transaction_statements_are_refused(storage: StandaloneStorage, query: str) -> None:
    storage.put("pending", 1)
    with pytest.raises(SqlError) as info:
        storage.sql.exec(query)
    message = str(info.value)
    assert "transaction statements are not allowed" in message
    assert "transaction()" in message
    assert info.value.sqlite_errorname == "SQLITE_AUTH"
    assert storage.core.connection().in_transaction  # the event's transaction is untouched
    assert storage.get("pending") == 1


def test_attach_and_detach_are_refused(storage: StandaloneStorage, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with pytest.raises(SqlError, match="ATTACH and DETACH are not allowed"):
        storage.sql.exec("ATTACH DATABASE ? AS other", str(other))
    with pytest.raises(SqlError, match="ATTACH and DETACH are not allowed"):
        storage.sql.exec("DETACH DATABASE other")
    assert not other.exists()


def test_vacuum_into_cannot_write_another_file(storage: StandaloneStorage, tmp_path: Path) -> None:
    storage.put("k", 1)
    storage.commit()
    target = tmp_path / "copy.sqlite"
    with pytest.raises(SqlError):
        storage.sql.exec("VACUUM INTO ?", str(target))
    assert not target.exists()


@pytest.mark.parametrize(
    "query",
    [
        "PRAGMA journal_mode",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA synchronous = OFF",
        "PRAGMA main.synchronous = 0",
        "PRAGMA writable_schema = ON",
        "PRAGMA max_page_count = 1000000000",
        "PRAGMA trusted_schema = ON",
        "SELECT * FROM pragma_journal_mode",
    ],
)
def test_disallowed_pragmas_are_refused(storage: StandaloneStorage, query: str) -> None:
    storage.put("k", 1)
    with pytest.raises(SqlError, match=r"PRAGMA [a-z_]+ is not allowed") as info:
        storage.sql.exec(query)
    assert "allowed:" in str(info.value)
    assert info.value.sqlite_errorname == "SQLITE_AUTH"
    assert storage.core.internal("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert storage.core.internal("PRAGMA synchronous").fetchone()[0] == 1
    assert storage.core.internal("PRAGMA writable_schema").fetchone()[0] == 0


def test_allowed_pragmas_work(people: StandaloneStorage) -> None:
    columns = people.sql.exec("PRAGMA table_info(people)").fetchall()
    assert [c["name"] for c in columns] == ["id", "name", "age"]
    assert people.sql.exec("PRAGMA foreign_keys").one() == {"foreign_keys": 1}  # on by default
    people.sql.exec("PRAGMA foreign_keys = ON")  # allowed (inside a transaction: a no-op)
    assert people.sql.exec("PRAGMA defer_foreign_keys").column_names == ["defer_foreign_keys"]
    assert people.sql.exec("PRAGMA index_list(people)").fetchall() == []
    assert people.sql.exec("PRAGMA quick_check").one() == {"quick_check": "ok"}
    names = [r["name"] for r in people.sql.exec("SELECT name FROM pragma_table_info('people')")]
    assert names == ["id", "name", "age"]


def test_foreign_keys_can_be_enforced(storage: StandaloneStorage) -> None:
    storage.sql.exec("PRAGMA foreign_keys = ON")
    storage.sql.exec("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    storage.sql.exec("CREATE TABLE child (parent_id REFERENCES parent (id))")
    with pytest.raises(SqlError, match="FOREIGN KEY constraint failed"):
        storage.sql.exec("INSERT INTO child VALUES (42)")


@pytest.mark.parametrize(
    "query",
    [
        "CREATE TEMP TABLE t (x)",
        "CREATE TEMPORARY TABLE t (x)",
        "CREATE TABLE temp.t (x)",
        "CREATE TEMP VIEW v AS SELECT 1",
        "CREATE TEMP TRIGGER tr AFTER INSERT ON real_table BEGIN SELECT 1; END",
    ],
)
def test_temp_objects_are_refused(storage: StandaloneStorage, query: str) -> None:
    storage.sql.exec("CREATE TABLE real_table (x)")
    with pytest.raises(SqlError, match="TEMP tables, views and triggers are not allowed"):
        storage.sql.exec(query)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM _raydo_kv",
        "SELECT key FROM _RAYDO_KV",
        'SELECT value FROM "_Raydo_Kv"',
        "SELECT count(*) FROM main._raydo_kv",
        "SELECT * FROM [_raydo_kv]",
        "INSERT INTO _raydo_kv (key, value) VALUES ('x', x'c0')",
        "INSERT INTO _RAYDO_KV VALUES ('x', x'c0')",
        "UPDATE _raydo_kv SET value = x'c0'",
        "DELETE FROM _raydo_kv",
        "DROP TABLE _raydo_kv",
        "DROP TABLE IF EXISTS _RAYDO_KV",
        "CREATE INDEX kv_values ON _raydo_kv (value)",
        "CREATE INDEX kv_values ON _RAYDO_KV (value)",
        "ALTER TABLE _raydo_kv RENAME TO mine",
        "ALTER TABLE _raydo_kv ADD COLUMN extra",
        "CREATE TRIGGER spy AFTER INSERT ON _raydo_kv BEGIN SELECT 1; END",
        "CREATE TABLE _raydo_mine (x)",
        "SELECT * FROM people WHERE name IN (SELECT key FROM _raydo_kv)",
        "WITH k AS (SELECT * FROM _raydo_kv) SELECT * FROM k",
    ],
)
def test_raydo_tables_are_refused(people: StandaloneStorage, query: str) -> None:
    people.put("secret", "value")
    with pytest.raises(SqlError) as info:
        people.sql.exec(query)
    message = str(info.value)
    assert "is not allowed: tables named _raydo_* belong to raydo" in message
    assert info.value.sqlite_errorname == "SQLITE_AUTH"
    assert people.list() == {"secret": "value"}
    assert [r[0] for r in people.core.internal("PRAGMA index_list(_raydo_kv)")] in ([], [0])


def test_views_and_triggers_cannot_reach_raydo_tables(people: StandaloneStorage) -> None:
    people.put("secret", "value")
    people.commit()
    # Refused when made, not only when used (they ran inside raydo's own trusted writes).
    with pytest.raises(SqlError, match="belong to raydo"):
        people.sql.exec("CREATE VIEW peek AS SELECT * FROM _raydo_kv")
    people.rollback()
    with pytest.raises(SqlError, match="belong to raydo"):
        people.sql.exec(
            "CREATE TRIGGER wipe AFTER INSERT ON people BEGIN DELETE FROM _raydo_kv; END"
        )
    people.rollback()
    people.sql.exec("INSERT INTO people (name) VALUES ('eve')")
    assert people.list() == {"secret": "value"}
    assert people.sql.exec("SELECT count(*) AS n FROM people").one() == {"n": 3}


def test_cached_internal_statements_cannot_be_reused(storage: StandaloneStorage) -> None:
    # warm sqlite3's statement cache with every internal KV statement
    storage.put("k", "v")
    assert storage.get("k") == "v"
    assert storage.get_many(["k"]) == {"k": "v"}
    assert storage.list() == {"k": "v"}
    storage.delete("nope")
    for query, params in [
        ("SELECT value FROM _raydo_kv WHERE key = ?", ("k",)),
        ("SELECT key, value FROM _raydo_kv ORDER BY key", ()),
        ("DELETE FROM _raydo_kv WHERE key = ?", ("k",)),
        (
            "INSERT INTO _raydo_kv (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            ("k", b"\xc0"),
        ),
    ]:
        with pytest.raises(SqlError, match="belong to raydo"):
            storage.sql.exec(query, *params)
    assert storage.get("k") == "v"


def test_schema_of_raydo_tables_is_readable(storage: StandaloneStorage) -> None:
    storage.put("k", 1)
    names = [r["name"] for r in storage.sql.exec("SELECT name FROM sqlite_master")]
    assert "_raydo_kv" in names
    columns = storage.sql.exec("PRAGMA table_info(_raydo_kv)").fetchall()
    assert [c["name"] for c in columns] == ["key", "value"]


# ---- values and parameters --------------------------------------------------------------


def test_64_bit_ints_are_exact(storage: StandaloneStorage) -> None:
    storage.sql.exec("CREATE TABLE n (v INTEGER)")
    for value in (2**63 - 1, -(2**63), 2**53 + 1, -(2**53) - 1, 0):
        storage.sql.exec("INSERT INTO n VALUES (?)", value)
    rows = [r[0] for r in storage.sql.exec("SELECT v FROM n ORDER BY rowid").raw()]
    assert rows == [2**63 - 1, -(2**63), 2**53 + 1, -(2**53) - 1, 0]
    assert all(type(v) is int for v in rows)
    literal = storage.sql.exec("SELECT 9223372036854775807 AS hi, -9223372036854775808 AS lo")
    assert literal.one() == {"hi": 2**63 - 1, "lo": -(2**63)}


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, 10**30])
def test_int_param_beyond_64_bits_is_refused(storage: StandaloneStorage, value: int) -> None:
    with pytest.raises(SqlError, match="parameter 2 is an integer outside SQLite's 64-bit range"):
        storage.sql.exec("SELECT ?, ?", 1, value)


@pytest.mark.parametrize(
    ("params", "index", "type_name"),
    [
        (({"a": 1},), 1, "dict"),
        ((1, {1, 2}), 2, "set"),
        (("a", "b", [1]), 3, "list"),
        ((object(),), 1, "object"),
        ((1, 2.0, (1,)), 3, "tuple"),
    ],
)
def test_unsupported_param_types_name_the_parameter(
    storage: StandaloneStorage, params: tuple[Any, ...], index: int, type_name: str
) -> None:
    marks = ", ".join("?" * len(params))
    with pytest.raises(SqlError) as info:
        storage.sql.exec(f"SELECT {marks}", *params)
    assert f"parameter {index} has type {type_name}" in str(info.value)


def test_lone_surrogates_are_sql_errors(storage: StandaloneStorage) -> None:
    with pytest.raises(SqlError, match="not valid Unicode"):
        storage.sql.exec("SELECT ?", "bad \ud800")
    with pytest.raises(SqlError, match="not valid Unicode"):
        storage.sql.exec("SELECT '\ud800'")
    with pytest.raises(SqlError, match="not valid Unicode"):
        storage.sql.exec("SELECT '\udfff'; SELECT 1")


def test_nul_in_the_query_is_refused(storage: StandaloneStorage) -> None:
    with pytest.raises(SqlError, match="NUL"):
        storage.sql.exec("SELECT 1\x00; DROP TABLE x")
    with pytest.raises(SqlError, match="NUL"):
        storage.sql.exec("SELECT 'a\x00b'")
    # a NUL inside a bound value is fine
    assert storage.sql.exec("SELECT ? AS v", "a\x00b").one() == {"v": "a\x00b"}


# ---- limits -----------------------------------------------------------------------------


def test_query_over_sql_statement_bytes(make_storage: MakeStorage) -> None:
    storage = make_storage(limits=Limits(sql_statement_bytes=100))
    fits = "SELECT 1" + " " * 92
    assert len(fits.encode()) == 100
    assert storage.sql.exec(fits).one() == {"1": 1}
    with pytest.raises(LimitExceeded) as info:
        storage.sql.exec(fits + " ")
    assert info.value.limit == "sql_statement_bytes"
    wide = "SELECT '" + "é" * 46 + "'"  # 55 characters, 101 bytes
    assert len(wide) < 100 < len(wide.encode())
    with pytest.raises(LimitExceeded) as info:
        storage.sql.exec(wide)
    assert info.value.limit == "sql_statement_bytes"


def test_query_over_default_sql_statement_bytes(storage: StandaloneStorage) -> None:
    with pytest.raises(LimitExceeded) as info:
        storage.sql.exec("SELECT 1 " + "-" * 100_000)
    assert info.value.limit == "sql_statement_bytes"


def test_more_params_than_sql_params(make_storage: MakeStorage) -> None:
    storage = make_storage(limits=Limits(sql_params=5))
    assert list(storage.sql.exec("SELECT ?, ?, ?, ?, ?", 1, 2, 3, 4, 5).raw()) == [(1, 2, 3, 4, 5)]
    with pytest.raises(LimitExceeded) as info:
        storage.sql.exec("SELECT ?, ?, ?, ?, ?, ?", 1, 2, 3, 4, 5, 6)
    assert info.value.limit == "sql_params"
    with pytest.raises(SqlError):
        storage.sql.exec("SELECT ?6")  # SQLite's own variable limit follows sql_params


def test_blob_bigger_than_value_bytes_via_sql(make_storage: MakeStorage) -> None:
    storage = make_storage(limits=Limits(value_bytes=1000))
    storage.sql.exec("CREATE TABLE blobs (b BLOB)")
    storage.sql.exec("INSERT INTO blobs VALUES (?)", b"x" * 1000)
    storage.sql.exec("INSERT INTO blobs VALUES (?)", "é" * 500)  # 1000 bytes
    for value in (b"x" * 1001, "é" * 501, "x" * 1001):
        with pytest.raises(LimitExceeded) as info:
            storage.sql.exec("INSERT INTO blobs VALUES (?)", value)
        assert info.value.limit == "value_bytes"
    for query in (
        "INSERT INTO blobs VALUES (zeroblob(100000))",
        "INSERT INTO blobs VALUES (randomblob(100000))",
        "INSERT INTO blobs VALUES (replace(hex(zeroblob(3000)), '0', 'ab'))",
    ):
        with pytest.raises(LimitExceeded) as info:
            storage.sql.exec(query)
        assert info.value.limit == "value_bytes"
    assert storage.sql.exec("SELECT count(*) AS n FROM blobs").one() == {"n": 2}


def test_storage_bytes_limit(make_storage: MakeStorage, db_path: Path) -> None:
    limit = 64 * 1024
    storage = make_storage(limits=Limits(storage_bytes=limit))
    storage.sql.exec("CREATE TABLE t (b BLOB)")
    storage.sql.exec("INSERT INTO t VALUES (?)", b"committed")
    storage.put("kept", "yes")
    storage.commit()
    with pytest.raises(LimitExceeded) as info:
        for _ in range(200):
            storage.sql.exec("INSERT INTO t VALUES (randomblob(1000))")
    assert info.value.limit == "storage_bytes"
    # SQLITE_FULL ended the event's transaction: the storage refuses to go on until rollback.
    with pytest.raises(TransactionError, match="rolled back this event's transaction"):
        storage.get("kept")
    storage.rollback()
    assert storage.size_bytes <= limit
    assert storage.sql.exec("SELECT b FROM t").fetchall() == [{"b": b"committed"}]
    assert storage.get("kept") == "yes"
    with pytest.raises(LimitExceeded) as info:
        storage.put("big", b"y" * 100_000)
    assert info.value.limit == "storage_bytes"
    storage.rollback()
    storage.close()
    reopened = make_storage(limits=Limits(storage_bytes=limit))
    assert reopened.get("kept") == "yes"
    assert reopened.get("big") is None
    assert external_rows(db_path, "SELECT count(*) FROM t") == [(1,)]


def test_size_bytes_grows(storage: StandaloneStorage) -> None:
    assert storage.size_bytes == 0
    storage.sql.exec("CREATE TABLE t (b BLOB)")
    storage.commit()
    page = storage.sql.exec("PRAGMA page_size").one()["page_size"]
    small = storage.size_bytes
    assert small > 0
    assert small % page == 0
    storage.sql.exec("INSERT INTO t VALUES (randomblob(50000))")
    storage.put("k", b"z" * 20_000)
    storage.commit()
    assert storage.size_bytes >= small + 65_000  # 70,000 bytes written, in whole pages


def test_tables_and_columns_can_be_renamed_but_not_into_raydos_names(
    storage: StandaloneStorage,
) -> None:
    storage.sql.exec("CREATE TABLE t (a INTEGER)")
    storage.sql.exec("ALTER TABLE t RENAME COLUMN a TO b")
    storage.sql.exec("ALTER TABLE t RENAME TO u")
    assert storage.sql.exec("SELECT b FROM u").fetchall() == []
    storage.commit()
    for sneaky in (
        "ALTER TABLE u RENAME TO _raydo_kv2",
        'ALTER TABLE u RENAME TO "_RAYDO_x"',
        "ALTER TABLE u RENAME COLUMN b TO _raydo_c",
    ):
        with pytest.raises(SqlError, match="_raydo_"):
            storage.sql.exec(sneaky)
        storage.rollback()  # a refused schema change rolls the event back


def test_splitting_a_long_query_with_quoted_semicolons_is_correct() -> None:
    from raydo.storage.sql import split_statements

    literal = "'" + ";" * 20_000 + "'"
    query = f'SELECT {literal}; -- a ; comment\nSELECT /* ; */ "a;b"; SELECT [c;d]'
    parts = split_statements(query)
    assert len(parts) == 3
    assert parts[0] == f"SELECT {literal};"
    assert split_statements("SELECT 'it''s; fine'; SELECT 2") == [
        "SELECT 'it''s; fine';",
        " SELECT 2",
    ]
