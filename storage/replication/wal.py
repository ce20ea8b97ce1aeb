"""Reading an object's write-ahead log, and writing pages into a database file.

SQLite's WAL file is a 32-byte header (magic, version, page size, checkpoint sequence, two
salts, a checksum) and then frames: a 24-byte header (page number; the database's size in
pages after the commit on a commit frame, else 0; the two salts; a checksum) and one page.
Valid frames are a prefix of the file that carries the header's salts; after it may lie frames
of a transaction that rolled back (never a commit frame) or, after a restart of the log, of
the log before (other salts). So what is committed since a position is every frame from there
up to the last commit frame, stopping at the first frame with other salts.

The shipper reads only up to a length it took on the event loop right after a commit, so a
frame being written by a later transaction is never read half-made.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

WAL_HEADER = 32
FRAME_HEADER = 24
_MAGICS = (0x377F0682, 0x377F0683)


@dataclass(frozen=True, slots=True)
class WalPosition:
    """How far a WAL has been shipped: its salts (None before any header), an offset, and
    the CRC-32 of the WAL's bytes from its header to that offset, so that a WAL that lost or
    tore frames it shipped (its writes are not synced in ``normal`` durability; the mark
    that says what was shipped may reach the disk before them) is known by its content, not
    taken on its length."""

    salts: bytes | None = None
    offset: int = 0
    crc: int | None = 0
    """None: a position recorded before CRCs were (a mark of an older raydo)."""

    def to_json(self) -> dict[str, object]:
        return {
            "salts": None if self.salts is None else self.salts.hex(),
            "offset": self.offset,
            "crc": self.crc,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> WalPosition:
        salts = data.get("salts")
        offset = data.get("offset", 0)
        crc = data.get("crc")
        return cls(
            bytes.fromhex(salts) if isinstance(salts, str) else None,
            offset if isinstance(offset, int) else 0,
            crc if isinstance(crc, int) and not isinstance(crc, bool) else None,
        )

    def same_place(self, other: WalPosition) -> bool:
        """The same salts and offset (the CRC aside: one of them may not know it)."""
        return self.salts == other.salts and self.offset == other.offset


@dataclass(frozen=True, slots=True)
class Frames:
    """Whole committed transactions read from a WAL: ``pages`` in log order, each
    ``(page number, bytes)``; ``database_pages`` is the size after the last commit."""

    page_size: int
    pages: list[tuple[int, bytes]]
    database_pages: int
    end: WalPosition

    @property
    def nbytes(self) -> int:
        return len(self.pages) * (self.page_size + 4)


def wal_file(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


def read_header(wal: Path) -> tuple[int, bytes] | None:
    """``(page size, salts)`` of a WAL, or None when it is missing or has no header."""
    try:
        with wal.open("rb") as f:
            head = f.read(WAL_HEADER)
    except FileNotFoundError:
        return None
    if len(head) < WAL_HEADER:
        return None
    magic, _version, page_size = struct.unpack(">III", head[:12])
    if magic not in _MAGICS:
        return None
    return page_size, head[16:24]


def read_committed(wal: Path, since: WalPosition, length: int) -> Frames | None:
    """The transactions committed in ``wal`` after ``since``, reading no byte past ``length``;
    None when there are none. A log restarted since (other salts) is read from its start."""
    header = read_header(wal)
    if header is None:
        return None
    page_size, salts = header
    continuing = since.salts == salts and since.offset >= WAL_HEADER
    offset = since.offset if continuing else WAL_HEADER
    crc = since.crc if continuing else 0
    frame = FRAME_HEADER + page_size
    pages: list[tuple[int, bytes]] = []
    kept = 0  # pages up to the last commit frame seen
    database_pages = 0
    end = offset
    with wal.open("rb") as f:
        f.seek(offset)
        data = f.read(max(length - offset, 0))
    at = 0
    while at + frame <= len(data):
        number, size = struct.unpack(">II", data[at : at + 8])
        if data[at + 8 : at + 16] != salts:
            break
        pages.append((number, data[at + FRAME_HEADER : at + frame]))
        at += frame
        if size:
            kept, database_pages, end = len(pages), size, offset + at
    if not kept:
        return None
    if crc is not None:
        crc = zlib.crc32(memoryview(data)[: end - offset], crc)
    return Frames(page_size, pages[:kept], database_pages, WalPosition(salts, end, crc))


def holds(wal: Path, position: WalPosition) -> bool:
    """True when ``wal`` holds, from its header to ``position``, the bytes that were shipped
    (their CRC-32 is the position's; a position without one is taken on trust)."""
    if position.crc is None:
        return True
    want = max(position.offset - WAL_HEADER, 0)
    with wal.open("rb") as f:
        f.seek(WAL_HEADER)
        data = f.read(want)
    return len(data) == want and zlib.crc32(data) == position.crc


def write_pages(
    target: Path, page_size: int, pages: Sequence[tuple[int, bytes | memoryview]], size: int
) -> None:
    """Write each page at its place in the database file ``target``, then cut the file to
    ``size`` pages (the size after the last commit)."""
    fd = os.open(target, os.O_RDWR)
    try:
        for number, page in pages:
            os.pwrite(fd, page, (number - 1) * page_size)
        os.ftruncate(fd, size * page_size)
    finally:
        os.close(fd)


def page_size_of(database: bytes) -> int:
    """The page size a database file's header says (65536 is stored as 1)."""
    (size,) = struct.unpack(">H", database[16:18])
    return 65536 if size == 1 else int(size)
