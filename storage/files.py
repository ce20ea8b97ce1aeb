"""Opening storage files from outside their owner (inspection, CLI tools) under raydo's SQL
rules, and loading a dump into a new object's file.

Every connection here is hardened like the runtime's own (:func:`harden`: nothing attached, so
neither ``ATTACH`` nor ``VACUUM INTO`` writes a file elsewhere) and runs under the same
authorizer as user SQL, so the functions, virtual tables and SQLite internals user SQL cannot
reach, a tool's SQL cannot reach either.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._authorizer import Authorizer, InternalTables, harden, translate_error
from ._schema_guard import is_own, refusal_of, rows_naming_internal
from ._tables import COLUMNS, INTERNAL_PREFIX, META_TABLE, definition
from .errors import SqlError
from .sql import split_statements, strip_comments

__all__ = ["ReadOnlyConnection", "connect_read_only", "harden", "load_dump", "refusal_message"]

# The first and last statements of every dump `raydo objects export` writes.
_DUMP_BEGIN = "BEGIN TRANSACTION;"
_DUMP_COMMIT = "COMMIT;"


class ReadOnlyConnection(sqlite3.Connection):
    """A connection of :func:`connect_read_only`, keeping its authorizer so that a refused
    statement's error can say why (:func:`refusal_message`)."""

    authorizer: Authorizer


def connect_read_only(path: Path) -> ReadOnlyConnection:
    """A connection that cannot write to ``path`` nor anywhere else.

    The SQL it runs is held to user SQL's rules (functions, virtual tables, SQLite's
    internals, PRAGMAs), except that raydo's own tables may be read: what an operator
    inspecting a file is allowed. The file's URI is built by pathlib, so a folder name with
    ``?``, ``#`` or ``%`` opens the right file."""
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, factory=ReadOnlyConnection
    )
    harden(conn)
    conn.authorizer = Authorizer(InternalTables.READABLE)
    conn.set_authorizer(conn.authorizer)
    return conn


def refusal_message(conn: sqlite3.Connection, exc: sqlite3.Error) -> str:
    """``exc``'s message, with the rule that refused the statement when raydo's authorizer
    did (SQLite itself says only "not authorized")."""
    refusal = conn.authorizer.refusal if isinstance(conn, ReadOnlyConnection) else None
    if isinstance(conn, ReadOnlyConnection):
        conn.authorizer.refusal = None  # the next statement's error is its own
    return str(translate_error(exc, refusal, lambda _message: None))


def load_dump(path: Path, dump: str) -> None:
    """Make the SQLite file ``path`` (it must not exist) from a SQL dump as ``raydo objects
    export`` writes it, refusing what such a dump never contains.

    In order: the dump's ``BEGIN TRANSACTION;`` and ``COMMIT;`` are replaced by one
    transaction of the loader's; each statement runs under user SQL's rules, except that
    raydo's own tables may be created and filled (never updated, deleted from, altered, or
    given triggers, indexes or views); then the schema is checked: raydo's tables must be
    defined exactly as raydo defines them, nothing else may name ``_raydo_*``, and the alarm,
    if any, must be a time. Anything refused raises :class:`SqlError` and leaves no file.
    """
    statements = [s.strip() for s in split_statements(dump) if strip_comments(s)]
    if statements and statements[0] == _DUMP_BEGIN:
        statements.pop(0)
    if statements and statements[-1] == _DUMP_COMMIT:
        statements.pop()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        harden(conn)
        conn.execute("BEGIN")  # the loader's own, before the dump's rules apply
        authorizer = Authorizer(InternalTables.LOADABLE)
        conn.set_authorizer(authorizer)
        for i, statement in enumerate(statements, 1):
            authorizer.start_statement()
            authorizer.refusal = None
            try:
                conn.execute(statement).fetchall()
            except sqlite3.Error as exc:
                why = f": {authorizer.refusal}" if authorizer.refusal else ""
                hint = ""
                if "writable_schema" in statement.lower():
                    hint = " (virtual tables cannot be imported: make them again after)"
                raise SqlError(f"statement {i}: {exc}{why}{hint}") from None
        conn.set_authorizer(None)
        _check_loaded_schema(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        path.unlink(missing_ok=True)
        raise
    conn.close()


def _check_loaded_schema(conn: sqlite3.Connection) -> None:
    for row in rows_naming_internal(conn.execute):
        if not is_own(row):
            raise SqlError(f"the dump is refused: {refusal_of(row)}")
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name LIKE ? ESCAPE '\\'",
        (INTERNAL_PREFIX.replace("_", "\\_") + "%",),
    ).fetchall()
    for kind, name, sql in rows:
        if kind != "table" or name not in COLUMNS or sql != definition(name):
            raise SqlError(
                f"the dump is refused: its {kind} {name!r} is not raydo's (raydo defines"
                f" {INTERNAL_PREFIX}* tables itself: {', '.join(sorted(COLUMNS))})"
            )
    if any(name == META_TABLE for _, name, _ in rows):
        alarm = conn.execute(
            f"SELECT typeof(value), value FROM {META_TABLE} WHERE key = 'alarm'"
        ).fetchone()
        if alarm is not None and (alarm[0] != "integer" or alarm[1] <= 0):
            raise SqlError("the dump is refused: its alarm is not a time in epoch milliseconds")
