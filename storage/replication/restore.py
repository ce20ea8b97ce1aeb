"""Rebuilding an object's file from the store: its latest snapshot, then every segment after
it, each checked, in order.

In order: the newest snapshot marker at or before the wanted entry names the base (without
one, the entries are read from the start for a snapshot whose marker was never written); the
base's body goes into a new file beside the object's; each later entry is read and checked
(its sha256, and that no place is missing), and each segment's pages are written at their
offsets, the file cut to the size of its last commit; SQLite's ``integrity_check`` must say
``ok``; only then does the new file take the object's name, in one rename, with the WAL and
the mark of the old one removed. Any check that fails raises :class:`CorruptEntry` and leaves
the local files as they were.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from raydo.storage import layout

from .local_mark import LocalMark, remove_local, write_mark
from .log import ObjectLog
from .segments import CorruptEntry, Data, EntryKind, read_segment
from .wal import write_pages


@dataclass(frozen=True, slots=True)
class Restored:
    seq: int
    """The last entry the restored file holds."""
    snapshot: int | None
    """The snapshot it started from (None: the log holds no data yet, the file is absent)."""
    since_snapshot: int
    read_bytes: int
    entries: int


def restore(log: ObjectLog, database: Path, upto: int) -> Restored:
    """Make ``database`` the object as of entry ``upto`` (see the module's text)."""
    wanted = [seq for seq in log.entries_after(None) if seq <= upto]
    markers = [seq for seq in log.snapshots() if seq <= upto and seq in wanted]
    base: int | None = markers[-1] if markers else None
    read_bytes = 0
    body: Data | None = None
    if base is not None:
        entry = log.read(base)
        if entry.kind is not EntryKind.SNAPSHOT:
            raise CorruptEntry(f"{log.log_key(base)}: marked as a snapshot but is not one")
        body = entry.body
    else:  # no marker: a snapshot's marker may be missing (a crash between the two writes)
        for seq in wanted:
            entry = log.read(seq)
            if entry.kind is EntryKind.SNAPSHOT:
                base, body = seq, entry.body
            elif entry.kind is EntryKind.SEGMENT and base is None:
                raise CorruptEntry(f"{log.log_key(seq)}: a segment before any snapshot")
    if base is None or body is None:
        remove_local(database)
        return Restored(upto, None, 0, read_bytes, 0)
    read_bytes += len(body)
    later = [seq for seq in wanted if seq > base]
    expected = list(range(base + 1, upto + 1))
    if later != expected:
        missing = sorted(set(expected) - set(later))
        raise CorruptEntry(f"{log.root}: entries {missing[:5]} are missing from the log")
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = layout.partial_object_file(database, os.getpid())
    since = 0
    try:
        partial.write_bytes(body)
        for seq in later:
            entry = log.read(seq)
            if entry.kind is not EntryKind.SEGMENT:
                continue  # epochs carry no data; a later snapshot is the same state
            read_bytes += len(entry.body)
            since += len(entry.body)
            page_size, pages, changes = read_segment(entry.body, log.log_key(seq))
            write_pages(partial, page_size, changes, pages)
        _check_integrity(partial, log.root)
        with partial.open("rb+") as f:
            os.fsync(f.fileno())
        remove_local(database)
        os.replace(partial, database)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    write_mark(database, LocalMark(upto, snapshot=base, since_snapshot=since))
    return Restored(upto, base, since, read_bytes, 1 + len(later))


def _check_integrity(path: Path, where: str) -> None:
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    except sqlite3.DatabaseError as exc:
        raise CorruptEntry(f"{where}: the restored database does not open: {exc}") from None
    if result != [("ok",)]:
        raise CorruptEntry(f"{where}: the restored database fails integrity_check: {result[:3]}")
