"""Hostile SQL from a small grammar of SQLite's, for the fuzzing pass over the SQL rules.

The statements are shaped after SQLite's own syntax diagrams (CREATE TABLE/VIEW/TRIGGER/INDEX/
VIRTUAL TABLE, ALTER TABLE, DROP, INSERT, UPDATE, DELETE, SELECT with function calls, PRAGMA,
ATTACH, VACUUM INTO, transaction control), with every name drawn from the ones an attacker
would aim at (raydo's tables, SQLite's internals) in every spelling SQLite accepts: bare,
quoted four ways, any case, schema-qualified, with comments or odd whitespace between tokens.
Functions come from the build itself (``pragma_function_list``), so the allow-list is tried
against everything the build offers, not only what we thought of.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import strategies as st

TARGET_NAMES = [
    "t",
    "u",
    "v",
    "_raydo_kv",
    "_raydo_meta",
    "_raydo_sockets",
    "_raydo_x",
    "sqlite_master",
    "sqlite_stmt",
    "dbstat",
    "sqlite_sequence",
]
MODULES = ["fts5", "fts3", "fts4", "fts3tokenize", "fts4aux", "fts5vocab", "rtree", "dbstat"]
MODULES += ["sqlite_stmt", "json_each", "pragma_table_info"]
PRAGMAS = ["journal_mode", "synchronous", "writable_schema", "trusted_schema", "table_info"]
PRAGMAS += ["schema_version", "user_version", "max_page_count", "foreign_keys", "cell_size_check"]
PRAGMAS += ["mmap_size", "temp_store_directory", "data_store_directory", "query_only"]
SEPARATORS = [" ", "/**/", "\n", "\t", " /* x */ ", "--c\n"]


def _build_functions() -> list[tuple[str, int]]:
    conn = sqlite3.connect(":memory:")
    try:
        rows = conn.execute("SELECT DISTINCT name, narg FROM pragma_function_list").fetchall()
    finally:
        conn.close()
    return sorted((name, narg) for name, narg in rows)


FUNCTIONS = _build_functions()


def spelled(name: str) -> st.SearchStrategy[str]:
    """``name`` in one of the spellings SQLite reads as that name."""
    cased = st.sampled_from([name, name.upper(), name.title(), name.swapcase()])
    quoted = cased.flatmap(
        lambda n: st.sampled_from([n, f'"{n}"', f"[{n}]", f"`{n}`", f"main.{n}", f'main."{n}"'])
    )
    return quoted


names = st.sampled_from(TARGET_NAMES).flatmap(spelled)
# Names the attacker wants a user object to take: raydo's, in every spelling.
raydo_names = st.sampled_from([n for n in TARGET_NAMES if n.startswith("_raydo_")]).flatmap(spelled)
user_tables = st.sampled_from(["t", "u"])
sep = st.sampled_from(SEPARATORS)
LITERALS = ["1", "NULL", "'simple'", "'porter'", "x'00'", "x'4141414141414141'", "-1", "'$.a'"]
LITERALS += ["'[1,2]'", "'_raydo_kv'", "'/tmp/x'", "3.5", "(SELECT 1)", "zeroblob(8)"]
literal = st.sampled_from(LITERALS)


@st.composite
def call(draw: st.DrawFn) -> str:
    name, narg = draw(st.sampled_from(FUNCTIONS))
    count = draw(st.integers(0, 3)) if narg < 0 else narg
    args = ", ".join(draw(literal) for _ in range(count))
    return f"{name}({args})"


expression = st.one_of(literal, call(), st.sampled_from(["x", "rowid", "*"]))


@st.composite
def statement(draw: st.DrawFn, outside: Path) -> str:
    """One statement; ``outside`` is a folder the statement may try to write files into."""
    s = draw(sep)
    name = draw(st.one_of(names, raydo_names))
    other = draw(st.one_of(user_tables, user_tables, names))
    out = outside / f"f{draw(st.integers(0, 9))}.sqlite"
    tokenizer = draw(st.sampled_from(["simple", "evil"]))
    pragma = draw(st.sampled_from(PRAGMAS)) + draw(st.sampled_from(["", " = 1", " = OFF", "(t)"]))
    shapes = [
        f"CREATE TABLE{s}{name} (x, y)",
        f"CREATE TABLE{s}{name} (x REFERENCES {other} (key))",
        f"CREATE TABLE{s}{name} AS SELECT {draw(expression)} AS x",
        f"CREATE VIEW{s}{name} AS SELECT {draw(expression)} FROM {other}",
        f"CREATE TRIGGER{s}{name} AFTER INSERT ON {other} BEGIN"
        f" INSERT INTO {draw(names)} VALUES ({draw(expression)}); END",
        f"CREATE TRIGGER{s}{name} BEFORE DELETE ON {other} BEGIN SELECT {draw(expression)}; END",
        f"CREATE INDEX{s}{name} ON {other} (x)",
        f"CREATE VIRTUAL TABLE{s}{name} USING {draw(st.sampled_from(MODULES))}(x)",
        f"CREATE VIRTUAL TABLE{s}{name} USING fts3(x, tokenize={tokenizer})",
        f"ALTER TABLE {other}{s}RENAME TO{s}{name}",
        f"ALTER TABLE {other} RENAME COLUMN x TO{s}{name}",
        f"ALTER TABLE {other} ADD COLUMN {name}",
        f"DROP {draw(st.sampled_from(['TABLE', 'VIEW', 'TRIGGER', 'INDEX']))} IF EXISTS {name}",
        f"INSERT INTO {name} VALUES ({draw(expression)}, {draw(expression)})",
        f"INSERT INTO {name} (key, value) VALUES ('k', {draw(expression)})",
        f"UPDATE {name} SET value = {draw(expression)}",
        f"DELETE FROM {name}",
        f"SELECT {draw(expression)}, {draw(expression)} FROM {name}",
        f"SELECT {draw(call())}",
        f"SELECT * FROM {draw(st.sampled_from(MODULES))}",
        f"PRAGMA {pragma}",
        f"ATTACH DATABASE '{out}' AS e",
        f"VACUUM INTO '{out}'",
        f"{draw(st.sampled_from(['BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT s', 'RELEASE s']))}",
        f"/*raydo {draw(st.text('0123456789abcdef', min_size=16, max_size=16))}*/ "
        f"SELECT value FROM {name}",
    ]
    return draw(st.sampled_from(shapes))


def statements(outside: Path, most: int = 6) -> st.SearchStrategy[list[str]]:
    """A short run of statements, as one event might send them."""
    return st.lists(statement(outside), min_size=1, max_size=most)
