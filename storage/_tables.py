"""The names of raydo's own tables inside an object's file, said once.

User SQL may not touch any table whose name starts with :data:`INTERNAL_PREFIX` (see
:mod:`storage._authorizer`); raydo keeps its key-value pairs, its facts about the object and
its WebSocket records in the tables below.
"""

from __future__ import annotations

import secrets

INTERNAL_PREFIX = "_raydo_"
KV_TABLE = "_raydo_kv"
"""``(key TEXT PRIMARY KEY, value BLOB)``: the object's key-value pairs, msgpack values."""
META_TABLE = "_raydo_meta"
"""``(key TEXT PRIMARY KEY, value)``: the alarm, the object's name, the auto-response."""
SOCKETS_TABLE = "_raydo_sockets"
"""One row per accepted WebSocket: its gateway, tags and attachment."""

COLUMNS = {
    KV_TABLE: "(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    META_TABLE: "(key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    SOCKETS_TABLE: (
        "(sid TEXT PRIMARY KEY, gateway TEXT NOT NULL, tags BLOB NOT NULL, attachment BLOB)"
        " WITHOUT ROWID"
    ),
}
"""Each of raydo's tables as it is made: ``CREATE TABLE <name> <columns>``. A file whose raydo
tables are defined otherwise is not one raydo made (see :func:`storage.files.load_dump`)."""


def definition(table: str) -> str:
    """The SQL SQLite keeps in ``sqlite_master`` for raydo's ``table``."""
    return f"CREATE TABLE {table} {COLUMNS[table]}"


TAG_START = "/*raydo"
"""How the text of every internal statement starts; user SQL that carries it anywhere is
refused (whatever follows, so no process's tag gets through)."""
TAG = f"{TAG_START} {secrets.token_hex(8)}*/ "
"""The prefix of every internal statement. sqlite3 caches prepared statements by their text,
and the authorizer only runs when a statement is prepared, so user SQL must never be able to
hit the cache entry of an internal statement: the random part keeps the tag unguessable and
the refusal of :data:`TAG_START` keeps it out of user text."""
