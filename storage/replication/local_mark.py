"""What the local file holds of the store's log, kept beside the object's file.

After every shipped entry (and after a checkpoint or a restore) the owner records which entry
the local file is at and how far its WAL was shipped. At activation that says, without one
read of the store's data, whether the local file is current (nothing in the log after it),
behind (a restore is needed), or ahead (commits never shipped, so never acknowledged in
``sync`` mode: they are cut off the WAL).

The mark is written after every round, so it is written in place, never replaced: the file
has two slots of :data:`SLOT_BYTES`, each ``b"RMK2"``, a generation, the length of a JSON
body, the body and a CRC-32 of all of it; a write goes to the slot the older generation is
in, so a crash mid-write leaves the other slot's mark whole, and the reader takes the valid
slot of the newer generation. Creating a file and renaming it over the mark (the way the
mark was first written, still read) costs the filesystem's journal two changes to the
folder per round; under load that took longer than the round's store write.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from raydo.storage import layout

from .wal import WalPosition

LABEL = "replica"
SLOT_BYTES = 512
_MAGIC = b"RMK2"
_SLOT_HEAD = struct.Struct(">4sQH")
_CRC = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class LocalMark:
    seq: int
    """The last entry of the log the local file holds."""
    wal: WalPosition = field(default_factory=WalPosition)
    snapshot: int | None = None
    """The place of the latest snapshot in the store, when known."""
    since_snapshot: int = 0
    """Bytes shipped in segments since that snapshot."""
    stream: str | None = None
    """The host log holding the object's latest version beyond entry ``seq``, if any."""
    version_ms: int | None = None
    """That version's time: the local file holds it (it is the one the WAL reaches)."""


def mark_file(database: Path) -> Path:
    return layout.aside_file(database, LABEL)


def read_mark(database: Path) -> LocalMark | None:
    """The mark beside ``database``; None when there is none, it is unreadable, or the
    database itself is gone."""
    if not database.exists():
        return None
    try:
        raw = mark_file(database).read_bytes()
    except OSError:
        return None
    slots = [_slot(raw, at) for at in (0, SLOT_BYTES)]
    found = max((slot for slot in slots if slot is not None), default=None)
    body = found[1] if found is not None else raw  # no slot: a mark of the first format
    try:
        data = json.loads(body)
        snapshot = data.get("snapshot")
        return LocalMark(
            int(data["seq"]),
            WalPosition.from_json(data.get("wal") or {}),
            snapshot if isinstance(snapshot, int) else None,
            int(data.get("since_snapshot", 0)),
            _text_or_none(data.get("stream")),
            _int_or_none(data.get("version_ms")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):  # damaged: not a mark
        return None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _slot(raw: bytes, at: int) -> tuple[int, bytes] | None:
    """``(generation, body)`` of the slot at ``at``; None when it holds no whole mark."""
    head = raw[at : at + _SLOT_HEAD.size]
    if len(head) < _SLOT_HEAD.size:
        return None
    magic, generation, length = _SLOT_HEAD.unpack(head)
    end = at + _SLOT_HEAD.size + length
    if magic != _MAGIC or end + _CRC.size > at + SLOT_BYTES or end + _CRC.size > len(raw):
        return None
    (crc,) = _CRC.unpack_from(raw, end)
    if zlib.crc32(raw[at:end]) != crc:
        return None
    return generation, raw[at + _SLOT_HEAD.size : end]


def write_mark(database: Path, mark: LocalMark) -> None:
    """Write the mark into the slot of the older generation (see the module's text): a
    crash leaves the old mark or the new one."""
    body = json.dumps(
        {
            "seq": mark.seq,
            "wal": mark.wal.to_json(),
            "snapshot": mark.snapshot,
            "since_snapshot": mark.since_snapshot,
            **(
                {}
                if mark.stream is None
                else {"stream": mark.stream, "version_ms": mark.version_ms}
            ),
        },
        separators=(",", ":"),
    ).encode()
    if _SLOT_HEAD.size + len(body) + _CRC.size > SLOT_BYTES:
        raise ValueError(f"a mark of {len(body)} bytes does not fit a slot")
    fd = os.open(mark_file(database), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        raw = os.pread(fd, 2 * SLOT_BYTES, 0)
        slots = [_slot(raw, at) for at in (0, SLOT_BYTES)]
        generations = [slot[0] if slot is not None else -1 for slot in slots]
        if raw and max(generations) < 0:
            os.ftruncate(fd, 0)  # a mark of the first format: this one replaces it
        older = 0 if generations[0] <= generations[1] else 1
        record = _SLOT_HEAD.pack(_MAGIC, max(generations) + 1, len(body)) + body
        os.pwrite(fd, record + _CRC.pack(zlib.crc32(record)), older * SLOT_BYTES)
    finally:
        os.close(fd)


def remove_local(database: Path) -> None:
    """Delete the object's file, its WAL, its shared-memory index and its mark."""
    for path in (
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
        mark_file(database),
    ):
        path.unlink(missing_ok=True)
