"""What the local file holds of the store's log, kept beside the object's file.

After every shipped entry (and after a checkpoint or a restore) the owner records which entry
the local file is at and how far its WAL was shipped. At activation that says, without one
read of the store's data, whether the local file is current (nothing in the log after it),
behind (a restore is needed), or ahead (commits never shipped, so never acknowledged in
``sync`` mode: they are cut off the WAL).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from raydo.storage import layout

from .wal import WalPosition

LABEL = "replica"


@dataclass(frozen=True, slots=True)
class LocalMark:
    seq: int
    """The last entry of the log the local file holds."""
    wal: WalPosition = field(default_factory=WalPosition)
    snapshot: int | None = None
    """The place of the latest snapshot in the store, when known."""
    since_snapshot: int = 0
    """Bytes shipped in segments since that snapshot."""


def mark_file(database: Path) -> Path:
    return layout.aside_file(database, LABEL)


def read_mark(database: Path) -> LocalMark | None:
    """The mark beside ``database``; None when there is none, it is unreadable, or the
    database itself is gone."""
    if not database.exists():
        return None
    try:
        data = json.loads(mark_file(database).read_text())
        snapshot = data.get("snapshot")
        return LocalMark(
            int(data["seq"]),
            WalPosition.from_json(data.get("wal") or {}),
            snapshot if isinstance(snapshot, int) else None,
            int(data.get("since_snapshot", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # damaged: not a mark
        return None


def write_mark(database: Path, mark: LocalMark) -> None:
    """Replace the mark in one rename (a crash leaves the old one or the new one)."""
    target = mark_file(database)
    partial = target.with_name(target.name + ".new")
    partial.write_text(
        json.dumps(
            {
                "seq": mark.seq,
                "wal": mark.wal.to_json(),
                "snapshot": mark.snapshot,
                "since_snapshot": mark.since_snapshot,
            }
        )
    )
    os.replace(partial, target)


def remove_local(database: Path) -> None:
    """Delete the object's file, its WAL, its shared-memory index and its mark."""
    for path in (
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
        mark_file(database),
    ):
        path.unlink(missing_ok=True)
