"""How far a storage folder's objects are from the replication store, read off the disk.

For each object file of a binding: the local mark (what was last shipped, see
:mod:`.local_mark`) against the file's WAL. Commits the WAL holds past the mark are not in
the store yet: in ``sync`` mode they were never acknowledged (a host between a commit and its
round, or one that died there); in ``async`` mode they are the loss window. The mark's time
is when the last round of the object ended, so the oldest commit not shipped is no older
than it: that is what ``raydo storage status`` shows as "unshipped since".

With a store, :func:`store_entries_after` also asks, per object, what the store holds past
the local mark (one LIST each): entries there mean another node wrote since, and this file is
behind (its next activation here restores).

Only what this folder holds is seen: on a cluster without a shared disk each node has its
own; the hosts' ``raydo_replication_*`` metrics cover every node.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from raydo.storage import layout

from .local_mark import mark_file, read_mark
from .log import ObjectLog
from .settings import ReplicationSettings
from .store import ObjectStore
from .wal import WAL_HEADER, read_header, wal_file


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """One object file against its mark."""

    object_hex: str
    replicated: bool
    """A mark is beside the file: some round shipped it (or a restore made it)."""
    seq: int | None
    """The last entry of the store's log the file holds, when it has a mark."""
    unshipped_bytes: int
    """WAL bytes past what was shipped (the whole WAL's frames when nothing was)."""
    last_shipped: float | None
    """When the mark was written (time.time()), when there is one."""

    @property
    def behind(self) -> bool:
        return self.unshipped_bytes > 0


@dataclass(frozen=True, slots=True)
class BindingStatus:
    """The objects of one binding in one folder."""

    binding: str
    objects: int
    replicated: int
    behind: int
    unshipped_bytes: int
    unshipped_since: float | None
    """The oldest last-shipped time among the objects behind: every commit not in the store
    was made after it."""

    def as_json(self) -> dict[str, object]:
        return {
            "binding": self.binding,
            "objects": self.objects,
            "replicated": self.replicated,
            "behind": self.behind,
            "unshipped_bytes": self.unshipped_bytes,
            "unshipped_since": self.unshipped_since,
        }


def object_status(database: Path, object_hex: str) -> ObjectStatus:
    """The status of one object file (see :class:`ObjectStatus`)."""
    mark = read_mark(database)
    wal = wal_file(database)
    try:
        wal_bytes = wal.stat().st_size
    except FileNotFoundError:
        wal_bytes = 0
    last_shipped: float | None = None
    if mark is None:
        unshipped = max(wal_bytes - WAL_HEADER, 0)
    else:
        try:
            last_shipped = os.stat(mark_file(database)).st_mtime
        except FileNotFoundError:
            last_shipped = None
        header = read_header(wal) if wal_bytes else None
        if header is None:
            unshipped = 0  # no WAL: everything is in the database file, and it was shipped
        elif mark.wal.salts is None or header[1] != mark.wal.salts:
            # A WAL restarted since the mark: all of it came after the last round.
            unshipped = max(wal_bytes - WAL_HEADER, 0)
        else:
            unshipped = max(wal_bytes - max(mark.wal.offset, WAL_HEADER), 0)
    return ObjectStatus(
        object_hex,
        mark is not None,
        None if mark is None else mark.seq,
        unshipped,
        last_shipped,
    )


def objects_status(root: str | Path, binding: str) -> Iterator[ObjectStatus]:
    """The status of every object file ``binding`` has under ``root``."""
    for object_hex in layout.object_hexes(root, binding):
        yield object_status(layout.object_file(root, binding, object_hex), object_hex)


def summarize(binding: str, statuses: Iterable[ObjectStatus]) -> BindingStatus:
    """One binding's line from its objects' statuses."""
    objects = replicated = behind = unshipped = 0
    since: float | None = None
    for status in statuses:
        objects += 1
        replicated += status.replicated
        if status.behind:
            behind += 1
            unshipped += status.unshipped_bytes
            if status.last_shipped is not None:
                since = status.last_shipped if since is None else min(since, status.last_shipped)
    return BindingStatus(binding, objects, replicated, behind, unshipped, since)


def store_entries_after(
    store: ObjectStore, settings: ReplicationSettings, binding: str, status: ObjectStatus
) -> int:
    """How many entries the store's log of the object holds past the local file (one
    LIST); more than zero means the file is behind the store."""
    log = ObjectLog(store, settings, binding, status.object_hex, b"\0" * 16)
    return len(log.entries_after(status.seq))
