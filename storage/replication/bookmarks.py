"""Point-in-time recovery: bookmarks name places of an object's log, a restore to one is a
new snapshot at the end of the log, and retention removes what no bookmark may reach.

A bookmark is ``VVVVVVVV-MMMMMMMMMMMMMMMM-SSSSSSSSSSSSSSSS``: the format's version, when the
entry was written (ms since the epoch) and its place in the log, each zero-padded hex, so
bookmarks sort as the log does (its writers never date an entry before the one it follows).
Each names the object's state after one shipping round; in ``sync`` mode every output an
event let out is covered by one, so any state anyone saw can be reached.

A restore never rewrites history: :func:`rewind` rebuilds the state at the bookmark (the
snapshot before it and the segments up to it, every checksum checked) and appends it as a
snapshot, so the log stays linear, any owner restores from it as from any snapshot, and the
bookmark of the entry before the restore undoes it. Retention (:func:`apply_retention`)
removes the entries older than ``retention_days``, but never the newest snapshot written
before the cutoff (the base the oldest reachable bookmark restores from) nor anything after.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .local_mark import remove_local
from .log import ObjectLog
from .restore import restore
from .segments import EntryKind, now_ms
from .settings import ReplicationSettings

VERSION = 1
_FORM = re.compile(r"([0-9a-f]{8})-([0-9a-f]{16})-([0-9a-f]{16})")
_DAY_MS = 86_400_000


class BookmarkUnavailable(ValueError):
    """A well-formed bookmark (or time) this object's log cannot restore to: past retention,
    before its first entry, or not one of its entries."""


@dataclass(frozen=True, order=True, slots=True)
class Bookmark:
    written_ms: int
    seq: int

    def __str__(self) -> str:
        return f"{VERSION:08x}-{self.written_ms:016x}-{self.seq:016x}"


def parse_bookmark(text: object) -> Bookmark:
    """``text`` as a bookmark; ValueError naming it when it is not one."""
    if not isinstance(text, str):
        raise TypeError(f"a bookmark is a str, not {type(text).__name__}")
    found = _FORM.fullmatch(text)
    if found is None:
        raise ValueError(
            f"{text!r} is not a bookmark (expected three groups of hex digits,"
            f" as get_current_bookmark() returns)"
        )
    if int(found[1], 16) != VERSION:
        raise ValueError(f"{text!r} is a bookmark of format {int(found[1], 16)}, not {VERSION}")
    return Bookmark(int(found[2], 16), int(found[3], 16))


def time_ms(when: object) -> int:
    """A time as ms since the epoch: a ``datetime`` (aware; naive means UTC) or a number of
    ms, as Cloudflare's ``getBookmarkForTime`` takes."""
    if isinstance(when, datetime):
        aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        return int(aware.timestamp() * 1000)
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise TypeError(f"a time is a datetime or ms since the epoch, not {type(when).__name__}")
    if when != when or when < 0:
        raise ValueError(f"{when!r} is not a time (ms since the epoch)")
    return int(when)


def cutoff_ms(settings: ReplicationSettings, now: int | None = None) -> int:
    """The oldest time a bookmark may name (``retention_days`` ago)."""
    return (now_ms() if now is None else now) - int(settings.retention_days * _DAY_MS)


def current(log: ObjectLog) -> Bookmark:
    """The bookmark of the log's tail as its owner knows it."""
    return Bookmark(log.tail_ms, log.tail)


def bookmark_for_time(log: ObjectLog, settings: ReplicationSettings, when: int) -> Bookmark:
    """The bookmark of the last entry written at or before ``when`` (ms): a LIST and a
    ranged GET per step of a binary search. BookmarkUnavailable when that is past retention
    or before the log's first entry."""
    cutoff = cutoff_ms(settings)
    if when < cutoff:
        raise BookmarkUnavailable(
            f"{_iso(when)} is older than retention_days = {settings.retention_days:g}"
        )
    entries = log.entries_after(None)
    if not entries:
        raise BookmarkUnavailable(f"{log.root}: the object's log is empty")
    low, high = 0, len(entries) - 1
    found: Bookmark | None = None
    while low <= high:
        middle = (low + high) // 2
        written = log.written_ms(entries[middle])
        if written <= when:
            found, low = Bookmark(written, entries[middle]), middle + 1
        else:
            high = middle - 1
    if found is None:
        raise BookmarkUnavailable(f"{_iso(when)} is before the object's oldest entry")
    return found


def check_reachable(log: ObjectLog, settings: ReplicationSettings, bookmark: Bookmark) -> None:
    """BookmarkUnavailable unless ``bookmark`` is an entry of this log within retention."""
    if bookmark.written_ms < cutoff_ms(settings):
        raise BookmarkUnavailable(
            f"bookmark {bookmark} is older than retention_days = {settings.retention_days:g}"
            f" ({_iso(bookmark.written_ms)})"
        )
    if bookmark.seq > log.tail or log.written_ms_or_none(bookmark.seq) != bookmark.written_ms:
        raise BookmarkUnavailable(f"bookmark {bookmark} is not one of this object's")


def rewind(
    log: ObjectLog, settings: ReplicationSettings, bookmark: Bookmark, scratch: Path
) -> Bookmark:
    """Append the object's state at ``bookmark`` as a snapshot after the log's tail; the new
    entry's bookmark. The caller owns the log (its tail is the store's last entry):
    :class:`~.log.Fenced` when another owner wrote meanwhile."""
    check_reachable(log, settings, bookmark)
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    rebuilt = scratch / f"rewind-{os.getpid()}-{secrets.token_hex(6)}.sqlite"
    try:
        restore(log, rebuilt, bookmark.seq)
        body = rebuilt.read_bytes() if rebuilt.exists() else b""
    finally:
        remove_local(rebuilt)
    log.append(EntryKind.SNAPSHOT, body)
    return current(log)


def apply_retention(log: ObjectLog, settings: ReplicationSettings, now: int | None = None) -> int:
    """Remove what no bookmark within retention needs; how many keys went. The newest
    snapshot written before the cutoff stays (the base of the oldest reachable state), and
    with it every entry after it; a log whose snapshots are all newer keeps everything."""
    cutoff = cutoff_ms(settings, now)
    base: int | None = None
    for seq in reversed(log.snapshots()):
        if log.written_ms(seq) <= cutoff:
            base = seq
            break
    if base is None:
        return 0
    return log.delete_before(base)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
