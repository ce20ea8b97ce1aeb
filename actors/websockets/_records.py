"""The WebSocket records an object keeps in its own file, so they outlive its instance.

A client socket lives in the gateway process that accepted it; the object keeps, per socket,
which gateway holds it, its tags and its attachment, in ``_raydo_sockets``. Hibernation,
eviction and host restarts lose none of them. The auto-response pair lives in
``_raydo_meta``. Writes join the event's transaction like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raydo.storage import StorageCore, codec
from raydo.storage.layout import COLUMNS, SOCKETS_TABLE


@dataclass(slots=True)
class SocketRecord:
    """One accepted socket as its object keeps it: the same ``sid`` the gateway gave it."""

    sid: str
    gateway: str
    tags: list[str]
    attachment: bytes | None


class SocketRecords:
    """The sockets of one object, read and written through its storage."""

    def __init__(self, storage: StorageCore) -> None:
        self._storage = storage
        tag = storage.tag
        self._create = f"{tag}CREATE TABLE IF NOT EXISTS {SOCKETS_TABLE} {COLUMNS[SOCKETS_TABLE]}"
        self._select = f"{tag}SELECT sid, gateway, tags, attachment FROM {SOCKETS_TABLE}"
        self._insert = f"{tag}INSERT OR REPLACE INTO {SOCKETS_TABLE} VALUES (?, ?, ?, ?)"
        self._delete = f"{tag}DELETE FROM {SOCKETS_TABLE} WHERE sid = ?"
        self._attach = f"{tag}UPDATE {SOCKETS_TABLE} SET attachment = ? WHERE sid = ?"

    def all(self) -> list[SocketRecord]:
        if not self._storage.table_exists(SOCKETS_TABLE):
            return []
        rows = self._storage.internal(self._select).fetchall()
        return [SocketRecord(sid, gw, list(codec.decode(tags)), att) for sid, gw, tags, att in rows]

    def add(self, record: SocketRecord) -> None:
        self._storage.ensure_table(SOCKETS_TABLE, self._create)
        self._storage.begin()
        self._storage.internal(
            self._insert,
            (record.sid, record.gateway, codec.encode(record.tags), record.attachment),
        )

    def remove(self, sid: str) -> bool:
        if not self._storage.table_exists(SOCKETS_TABLE):
            return False
        self._storage.begin()
        return bool(self._storage.internal(self._delete, (sid,)).rowcount)

    def attach(self, sid: str, attachment: bytes | None) -> None:
        if not self._storage.table_exists(SOCKETS_TABLE):
            return
        self._storage.begin()
        self._storage.internal(self._attach, (attachment, sid))

    def auto_response(self) -> tuple[str, str] | None:
        pair: Any = self._storage.get_meta("auto_response")
        return None if pair is None else (str(pair[0]), str(pair[1]))

    def set_auto_response(self, pair: tuple[str, str] | None) -> None:
        self._storage.set_meta("auto_response", None if pair is None else list(pair))
