"""The socket index: one SQLite file per binding (``<storage>/<BINDING>/_sockets.sqlite``)
saying which objects of which host have an open WebSocket, and which gateway holds it.

An object's socket records live in its own file (the truth, :mod:`actors.websockets._records`).
The index lets a host that starts (or restarts) find every socket of its objects without
opening every object's file: those whose gateway does not connect within a grace period are
lost, and their objects get ``web_socket_close`` (1006) once (:class:`HostSockets`).

Like the alarm index, it is written ahead of the object: a socket enters it before the commit
that records the socket, and leaves it after the commit that forgets it. A crash in between
leaves an entry without a record, which the host finds when it starts and drops (closing it
finds no record, so the object sees nothing); never a record without an entry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ._alarms import create_index_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sockets (sid TEXT PRIMARY KEY, object_hex TEXT NOT NULL,
    host TEXT NOT NULL, gateway TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sockets_by_host ON sockets (host);
"""


class IndexedSocket(NamedTuple):
    """One open socket of a host's objects, as the index knows it."""

    object_hex: str
    sid: str
    gateway: str


class SocketIndex:
    """The binding's index of open sockets, shared by all its hosts (SQLite serialises them).

    ``full_sync`` matches the objects' durability: with ``durability = "full"`` an entry is
    synced before the object's record can be, so a machine that crashes keeps the order too.
    """

    def __init__(self, path: Path, *, full_sync: bool = False) -> None:
        self.path = path
        self._synchronous = "FULL" if full_sync else "NORMAL"
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.path.exists():
                create_index_file(self.path, _SCHEMA)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._conn = conn
        return self._conn

    def opened(self, host: str, socket: IndexedSocket) -> None:
        """Before the commit that records ``socket`` in its object: the index knows it."""
        self._connection().execute(
            "INSERT OR REPLACE INTO sockets (sid, object_hex, host, gateway) VALUES (?, ?, ?, ?)",
            (socket.sid, socket.object_hex, host, socket.gateway),
        )

    def closed(self, sids: Iterable[str]) -> None:
        """After the commit that forgot these sockets: they leave the index."""
        rows = [(sid,) for sid in sids]
        if rows and self.path.exists():
            self._connection().executemany("DELETE FROM sockets WHERE sid = ?", rows)

    def of_host(self, host: str) -> list[IndexedSocket]:
        """The sockets of one host's objects (read once, when the host starts)."""
        if not self.path.exists():
            return []
        rows = (
            self._connection()
            .execute(
                "SELECT object_hex, sid, gateway FROM sockets WHERE host = ? ORDER BY sid",
                (host,),
            )
            .fetchall()
        )
        return [IndexedSocket(str(h), str(s), str(g)) for h, s, g in rows]

    def hosts(self) -> list[str]:
        """Every host label with an open socket in the index (dedicated hosts included)."""
        if not self.path.exists():
            return []
        rows = self._connection().execute("SELECT DISTINCT host FROM sockets").fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
