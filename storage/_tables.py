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

TAG_START = "/*raydo"
"""How the text of every internal statement starts; user SQL that carries it anywhere is
refused (whatever follows, so no process's tag gets through)."""
TAG = f"{TAG_START} {secrets.token_hex(8)}*/ "
"""The prefix of every internal statement. sqlite3 caches prepared statements by their text,
and the authorizer only runs when a statement is prepared, so user SQL must never be able to
hit the cache entry of an internal statement: the random part keeps the tag unguessable and
the refusal of :data:`TAG_START` keeps it out of user text."""
