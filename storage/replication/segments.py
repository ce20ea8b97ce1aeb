"""The entries of an object's log, as bytes: an epoch mark, a segment of WAL frames, or a
snapshot of the whole database; each sealed with a sha256 of everything before it.

::

    b"RDOLOG1\\n"  kind (1 byte)  owner (16 bytes)  written at (ms, 8 bytes)  body  sha256 (32)

A segment's body is the page size, the database's size in pages after its last commit, the
number of pages, then each page as its number and its bytes: whole transactions only. A
snapshot's body is the database file itself. The checksum is taken by the writer before the
upload and checked by every reader, so a byte changed anywhere on the way fails loudly.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from raydo.storage.errors import StorageError

MAGIC = b"RDOLOG1\n"
_HEAD = struct.Struct(">8sB16sQ")
_SEGMENT_HEAD = struct.Struct(">III")
_DIGEST = 32


class EntryKind(IntEnum):
    EPOCH = 1
    """A new owner's mark: it carries no data; every later entry of a stale owner fails."""
    SEGMENT = 2
    SNAPSHOT = 3
    JOURNAL = 4
    """A slot of a host log (:mod:`.journal`): versions of many objects."""
    SEAL = 5
    """The slot a new owner created to end another host's log."""


class CorruptEntry(StorageError):
    """An entry of the log (or a snapshot) is not what its writer stored."""


#: What the store's reads give: a restore's snapshot is read without copying its bytes.
Data = bytes | memoryview


@dataclass(frozen=True, slots=True)
class Entry:
    kind: EntryKind
    owner: bytes
    written_ms: int
    body: Data

    def seal(self) -> bytes:
        head = _HEAD.pack(MAGIC, self.kind, self.owner, self.written_ms)
        digest = hashlib.sha256(head)
        digest.update(self.body)
        return b"".join((head, self.body, digest.digest()))

    @classmethod
    def unseal(cls, data: Data, where: str) -> Entry:
        """The entry in ``data``; :class:`CorruptEntry` naming ``where`` when it is not whole.
        Its body is a view of ``data``, not a copy (a snapshot is the whole database)."""
        view = memoryview(data)
        if len(view) < _HEAD.size + _DIGEST:
            raise CorruptEntry(f"{where}: {len(view)} bytes is too short for a log entry")
        if hashlib.sha256(view[:-_DIGEST]).digest() != view[-_DIGEST:]:
            raise CorruptEntry(f"{where}: its sha256 does not match: the entry is corrupted")
        magic, kind, owner, written = _HEAD.unpack_from(view)
        if magic != MAGIC:
            raise CorruptEntry(f"{where}: not a raydo log entry")
        try:
            entry_kind = EntryKind(kind)
        except ValueError:
            raise CorruptEntry(f"{where}: unknown entry kind {kind}") from None
        return cls(entry_kind, owner, written, view[_HEAD.size : -_DIGEST])


#: Bytes of an entry's head: enough for :func:`written_ms_of` (a ranged read of the store).
HEAD_BYTES = _HEAD.size


def head_of(head: bytes, where: str) -> tuple[EntryKind, bytes, int]:
    """The kind, owner and time (ms) of the entry whose first :data:`HEAD_BYTES` are
    ``head``; its checksum is checked only by a reader of the whole entry."""
    if len(head) < _HEAD.size or head[: len(MAGIC)] != MAGIC:
        raise CorruptEntry(f"{where}: not a raydo log entry")
    _, kind, owner, written = _HEAD.unpack_from(head)
    try:
        return EntryKind(kind), bytes(owner), int(written)
    except ValueError:
        raise CorruptEntry(f"{where}: unknown entry kind {kind}") from None


def written_ms_of(head: bytes, where: str) -> int:
    """When the entry whose first :data:`HEAD_BYTES` are ``head`` was written (ms)."""
    return head_of(head, where)[2]


def now_ms() -> int:
    return int(time.time() * 1000)


def pages_body(page_size: int, database_pages: int, pages: Iterable[tuple[int, bytes]]) -> bytes:
    """A segment's body: ``pages`` (``(number, bytes)``, applied in order) and the size."""
    parts = [b""]
    count = 0
    for number, page in pages:
        parts.append(struct.pack(">I", number))
        parts.append(page)
        count += 1
    parts[0] = _SEGMENT_HEAD.pack(page_size, database_pages, count)
    return b"".join(parts)


def read_segment(body: Data, where: str) -> tuple[int, int, list[tuple[int, Data]]]:
    """``(page size, database pages, pages)`` of a segment's body."""
    if len(body) < _SEGMENT_HEAD.size:
        raise CorruptEntry(f"{where}: a segment without its header")
    page_size, database_pages, count = _SEGMENT_HEAD.unpack_from(body)
    step = 4 + page_size
    if len(body) != _SEGMENT_HEAD.size + count * step:
        raise CorruptEntry(f"{where}: a segment of {count} pages has the wrong length")
    pages: list[tuple[int, Data]] = []
    at = _SEGMENT_HEAD.size
    for _ in range(count):
        (number,) = struct.unpack_from(">I", body, at)
        pages.append((number, body[at + 4 : at + step]))
        at += step
    return page_size, database_pages, pages
