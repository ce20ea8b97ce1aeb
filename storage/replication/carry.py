"""Carrying an object's latest commits over from a host log into its own log: what a new
owner does before its epoch, and an operator's tool before it rewrites history."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .journal import Location, names_a_stream, object_digest, read_version, seal_and_read
from .log import ObjectLog
from .segments import Entry
from .store import StoreFailure

log = logging.getLogger("raydo.replication")

_TRIES = 5

Locate = Callable[[str, bytes], Location | None]
"""Where an object's (digest's) latest version lies in a stream (sealed first)."""
Read = Callable[[str, Location], tuple[Entry, bytes]]


def carry_over(
    object_log: ObjectLog, tail: int, locate: Locate, read: Read
) -> tuple[int, str, int] | None:
    """Put the object's latest version in the stream of the writer of entry ``tail`` (the
    log's last) after it, unless the log already holds something newer of that writer's or
    another owner wrote after it: ``(its place, the stream, its time)``, or None when nothing
    was carried. ``locate`` seals the stream (unless it is the caller's own)."""
    if tail < 0:
        return None
    _, owner, written = object_log.entry_head(tail)
    # The owner's next stamps come after the log's last entry, whatever this node's clock.
    object_log.tail_ms = max(object_log.tail_ms, written)
    if not names_a_stream(owner):
        return None
    stream = owner.hex()
    place = locate(stream, object_digest(object_log.root))
    if place is None:
        return None
    version, data = read(stream, place)
    for _ in range(_TRIES):
        if owner != version.owner or written >= version.written_ms:
            return None
        object_log.tail = tail
        if object_log.place(data, version.written_ms):
            log.info("%s: carried commits over from host log %s", object_log.root, stream)
            return tail + 1, stream, version.written_ms
        tail += 1
        _, owner, written = object_log.entry_head(tail)
    raise StoreFailure(f"{object_log.root}: the log kept moving while carrying commits over")


def carry_over_sealing(object_log: ObjectLog) -> tuple[int, str, int] | None:
    """:func:`carry_over` for a tool that owns no host log: the log's tail taken from the
    store (its ``follow``), its writer's stream sealed, so that host acknowledges nothing
    more (its objects take over again, or write their own logs)."""
    store, settings = object_log.store, object_log.settings
    return carry_over(
        object_log,
        object_log.tail,
        lambda stream, digest: seal_and_read(store, settings, stream).get(digest),
        lambda stream, place: read_version(store, settings, stream, place),
    )
