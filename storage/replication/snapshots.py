"""Snapshots: the whole database at one commit, so a restore reads one snapshot and the
segments after it instead of the object's whole history.

A snapshot is built from files alone, off the event loop: the database file, with the frames
of the current WAL up to a commit written over it. Only checkpoints write the database file
of a WAL database, and the replica checkpoints only between shipping rounds, so the file does
not change while a round builds a snapshot.
"""

from __future__ import annotations

from pathlib import Path

from .wal import WalPosition, read_committed, wal_file

#: A new snapshot once the segments since the last one outgrow the database, but not before
#: this many bytes of them (a tiny object would otherwise snapshot every few commits).
MIN_SEGMENT_BYTES_BETWEEN = 4 * 1024 * 1024


def snapshot_due(since_snapshot: int, database_bytes: int, have_one: bool) -> bool:
    """True when the next round should write a snapshot instead of a segment."""
    return not have_one or since_snapshot > max(database_bytes, MIN_SEGMENT_BYTES_BETWEEN)


def build_snapshot(database: Path, upto: WalPosition) -> bytes:
    """The database as of the commit that ends at ``upto`` in its WAL."""
    image = bytearray(database.read_bytes()) if database.exists() else bytearray()
    if upto.salts is None:
        return bytes(image)
    frames = read_committed(wal_file(database), WalPosition(), upto.offset)
    if frames is None or not frames.end.same_place(upto):
        raise RuntimeError("the WAL changed under a snapshot")
    size = frames.page_size
    for number, page in frames.pages:
        start = (number - 1) * size
        if len(image) < start:
            image.extend(bytes(start - len(image)))
        image[start : start + size] = page
    del image[frames.database_pages * size :]
    return bytes(image)
