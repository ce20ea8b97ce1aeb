"""The names of raydo's own tables inside an object's file, said once.

User SQL may not touch any table whose name starts with :data:`INTERNAL_PREFIX` (see
:mod:`storage._authorizer`); raydo keeps its key-value pairs, its facts about the object and
its WebSocket records in the tables below.
"""

from __future__ import annotations

INTERNAL_PREFIX = "_raydo_"
KV_TABLE = "_raydo_kv"
"""``(key TEXT PRIMARY KEY, value BLOB)``: the object's key-value pairs, msgpack values."""
META_TABLE = "_raydo_meta"
"""``(key TEXT PRIMARY KEY, value)``: the alarm, the object's name, the auto-response."""
SOCKETS_TABLE = "_raydo_sockets"
"""One row per accepted WebSocket: its gateway, tags and attachment."""
