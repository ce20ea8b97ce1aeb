"""Group commit for ``durability = "full"``: one fsync of an object's WAL for every commit
that arrived while the previous one ran.

SQLite's ``synchronous=FULL`` syncs the WAL inside every COMMIT, so an object's events, which
run one at a time, each wait for their own sync, and a busy object's throughput is one event
per sync. Instead the object's connection commits with ``synchronous=NORMAL`` and the host
asks a :class:`WalSync` for durability. What happens, in order:

1. A commit calls :meth:`WalSync.committed`, which returns None when everything committed is
   already durable, or a future that resolves once a sync started after this commit ended.
2. If no sync is running, one starts now (in a thread); commits that arrive while it runs
   wait for the next one, which starts as soon as it ends: one sync for all of them.
3. The host holds the event's reply, its socket sends and its calls to other objects until
   the future resolves (the output gate), while the object's next event may already run: it
   reads committed data, and its own output waits for a later sync, so outputs still leave
   in commit order.

An event that wrote nothing still waits for a running sync: it may have read data that is not
durable yet.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path


def sync_wal(database: Path) -> None:
    """fsync the WAL of ``database`` (after a checkpoint removed it, there is nothing to do:
    SQLite synced the database file itself)."""
    try:
        fd = os.open(f"{database}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WalSync:
    """The group commit of one object's file (see the module's text)."""

    __slots__ = ("_covered", "_dirty", "_next", "_running", "_sync")

    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync
        self._dirty = False  # committed writes no sync has started on yet
        self._running: asyncio.Future[None] | None = None
        self._covered: list[asyncio.Future[None]] = []  # resolved by the running sync
        self._next: list[asyncio.Future[None]] = []  # need the sync after it

    def committed(self, wrote: bool) -> asyncio.Future[None] | None:
        """A commit just ended (``wrote``: it wrote something): a future for when what was
        committed so far is durable, or None when it already is."""
        self._dirty = self._dirty or wrote
        if not self._dirty and self._running is None:
            return None
        durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._dirty:
            self._next.append(durable)
            if self._running is None:
                self._start()
        else:
            self._covered.append(durable)
        return durable

    @property
    def busy(self) -> bool:
        """True while a sync runs (commits may be waiting for it)."""
        return self._running is not None

    async def settled(self) -> None:
        """Wait until no sync runs or is due (a closing host's last commits are durable and
        their held outputs released when this returns)."""
        while self._running is not None:
            await asyncio.wait({self._running})
        await asyncio.sleep(0)  # let the callbacks of the last sync's futures run

    def _start(self) -> None:
        self._dirty = False
        self._covered, self._next = self._next, []
        self._running = asyncio.ensure_future(asyncio.to_thread(self._sync))
        self._running.add_done_callback(self._ended)

    def _ended(self, running: asyncio.Future[None]) -> None:
        covered, self._covered, self._running = self._covered, [], None
        cancelled = running.cancelled()
        failure = None if cancelled else running.exception()
        for durable in covered:
            if durable.done():
                continue
            if cancelled:
                durable.cancel()
            elif failure is not None:
                durable.set_exception(failure)
            else:
                durable.set_result(None)
        if self._next:
            self._start()
