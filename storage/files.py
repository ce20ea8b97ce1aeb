"""Opening storage files under raydo's SQL rules, from inside the runtime or outside it
(inspection, CLI tools).

Every connection raydo opens on an object's file is hardened the same way (:func:`harden`):
it cannot attach another database (so neither ``ATTACH`` nor ``VACUUM INTO`` can write a file
elsewhere), functions in the schema run only when SQLite marks them harmless, and, where the
Python build can say so, SQLite's defensive mode keeps SQL from writing its shadow tables and
its own schema.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._authorizer import Authorizer, InternalTables


def harden(conn: sqlite3.Connection) -> None:
    """No attached databases, untrusted schema, defensive mode where available."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.execute("PRAGMA trusted_schema=OFF")
    setconfig = getattr(conn, "setconfig", None)  # Python 3.12 and later
    defensive = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
    if setconfig is not None and defensive is not None:
        setconfig(defensive, True)


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write to ``path`` nor anywhere else.

    The SQL it runs is held to user SQL's rules (functions, virtual tables, SQLite's
    internals, PRAGMAs), except that raydo's own tables may be read: what an operator
    inspecting a file is allowed. The file's URI is built by pathlib, so a folder name with
    ``?``, ``#`` or ``%`` opens the right file."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    harden(conn)
    conn.set_authorizer(Authorizer(InternalTables.READABLE))
    return conn
