"""Group shipping: after each commit, the object's new WAL frames go to the store in one
entry, and commits that arrive while one is in flight go together in the next.

What happens, in order, for one object:

1. A commit calls :meth:`Shipper.committed` on the event loop; the WAL's length is taken
   then (every frame before it belongs to a finished commit). In ``sync`` mode the answer is a
   future the output gate holds the event's output on; in ``async`` mode it is None (outputs
   leave at once) and a round is due within ``async_interval_s``.
2. If no round runs, one starts now: under a host log, on the loop, as a version handed to
   the host log's writer (:meth:`Rounds.begin`); else on the replication threads: it reads
   the committed frames since the last shipped position and writes them as one entry (a
   segment, or a snapshot when one is due); store errors are retried until the deadline of
   the oldest commit it carries. Commits that arrive meanwhile wait for the next round,
   which starts as soon as this one ends: one store write for all of them.
3. When the round ends, its futures resolve (the outputs leave) and the replica may
   checkpoint the WAL. If it failed past its deadline (``sync``), or the log was fenced, the
   futures fail with :class:`ShippingFailed`, every later commit's too, and the host is told
   to drop the object and its local file (``lost``).

An event that wrote nothing still waits for a running round: it may have read what is not
in the store yet. Idle objects have no round and no timer: they cost no store request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Protocol

from raydo.storage.errors import StorageError

log = logging.getLogger("raydo.replication")


class ShippingFailed(StorageError):
    """The commit could not be put in the replication store in time: it was not
    acknowledged, the object was reset, and a retry may be needed."""


class Rounds(Protocol):
    """The work of a round, done by the replica (see :class:`~.replica.ObjectReplica`)."""

    def wal_length(self) -> int: ...

    def begin(self, length: int, deadline: float) -> Future[None] | None:
        """On the loop: start a round that needs no replication thread (a host log's), and
        return its future; None when the round is :meth:`ship`'s."""
        ...

    def ship(self, length: int, deadline: float) -> None:
        """On a replication thread: ship what is committed before ``length``; raise when it
        cannot by ``deadline`` (monotonic seconds)."""
        ...

    def shipped(self) -> None:
        """On the loop, after a round that ended well (the replica may checkpoint now)."""
        ...


class Shipper:
    """The shipping rounds of one object (see the module's text)."""

    __slots__ = (
        "_covered",
        "_deadline_s",
        "_dirty_since",
        "_executor",
        "_failures",
        "_interval_s",
        "_length",
        "_next",
        "_on_lost",
        "_rounds",
        "_running",
        "_sync",
        "_timer",
        "lost",
    )

    def __init__(
        self,
        rounds: Rounds,
        executor: Executor,
        *,
        sync: bool,
        deadline_s: float,
        interval_s: float,
        on_lost: Callable[[str], None],
    ) -> None:
        self._rounds = rounds
        self._executor = executor
        self._sync = sync
        self._deadline_s = deadline_s
        self._interval_s = interval_s
        self._on_lost = on_lost
        self._length = 0
        self._dirty_since: float | None = None  # the oldest commit no round has taken yet
        self._running: asyncio.Future[None] | None = None
        self._covered: list[asyncio.Future[None]] = []  # resolved by the running round
        self._next: list[asyncio.Future[None]] = []  # need the round after it
        self._timer: asyncio.TimerHandle | None = None
        self._failures = 0
        self.lost: str | None = None
        """Why the object's log can no longer be written by this host, once it cannot."""

    @property
    def idle(self) -> bool:
        """True when nothing is in flight or waiting to ship."""
        return self._running is None and self._dirty_since is None

    def committed(self, wrote: bool) -> asyncio.Future[None] | None:
        """A commit just ended: a future for when it is in the store (``sync``), or None."""
        loop = asyncio.get_running_loop()
        if self.lost is not None:
            failed: asyncio.Future[None] = loop.create_future()
            failed.set_exception(ShippingFailed(self.lost))
            return failed
        if wrote:
            self._length = self._rounds.wal_length()
            if self._dirty_since is None:
                self._dirty_since = time.monotonic()
        if not self._sync:
            if self._dirty_since is not None and self._running is None and self._timer is None:
                self._timer = loop.call_later(self._interval_s, self._start)
            return None
        if self._dirty_since is None and self._running is None:
            return None
        shipped: asyncio.Future[None] = loop.create_future()
        if self._dirty_since is not None:
            self._next.append(shipped)
            if self._running is None:
                self._start()
        else:
            self._covered.append(shipped)
        return shipped

    def flush(self) -> None:
        """Start a round now for what waits (a closing host's, an ``async`` object's)."""
        if self._running is None and self._dirty_since is not None and self.lost is None:
            self._start()

    def kick(self) -> None:
        """Have a round run now (or right after the running one) although nothing new was
        committed: the replica has something to write (see ``write_back_soon``)."""
        if self.lost is not None:
            return
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()
        if self._running is None:
            self._start()

    async def settled(self) -> None:
        """Flush, then wait until no round runs or is due."""
        self.flush()
        while self._running is not None:
            await asyncio.wait({self._running})
            self.flush()
        await asyncio.sleep(0)  # let the last round's futures' callbacks run

    def close(self) -> None:
        """Cancel a waiting timer (the round it would start is not needed: nothing waits)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _start(self) -> None:
        self._timer = None
        if self._running is not None or self._dirty_since is None or self.lost is not None:
            return
        deadline = self._dirty_since + self._deadline_s
        self._dirty_since = None
        self._covered, self._next = self._next, []
        loop = asyncio.get_running_loop()
        try:
            hosted = self._rounds.begin(self._length, deadline)
        except Exception as exc:  # noqa: BLE001 - a round's failure is the round's result
            hosted = Future()
            hosted.set_exception(exc)
        if hosted is None:
            self._running = loop.run_in_executor(
                self._executor, self._rounds.ship, self._length, deadline
            )
        else:
            self._running = asyncio.wrap_future(hosted, loop=loop)
        self._running.add_done_callback(self._ended)

    def _ended(self, running: asyncio.Future[None]) -> None:
        covered, self._covered, self._running = self._covered, [], None
        failure = asyncio.CancelledError() if running.cancelled() else running.exception()
        if failure is None:
            self._failures = 0
            for shipped in covered:
                if not shipped.done():
                    shipped.set_result(None)
            self._rounds.shipped()
        elif self._sync or not isinstance(failure, ShippingFailed):
            self._lose(f"{failure}", [*covered, *self._next])
            return
        else:  # async: the store is away; what was not shipped waits for a later round
            self._failures += 1
            log.warning("shipping failed (%d in a row), retrying: %s", self._failures, failure)
            if self._dirty_since is None:
                self._dirty_since = time.monotonic()
        if self._dirty_since is not None:
            if self._sync:
                self._start()
            else:
                delay = self._interval_s * min(2**self._failures, 30)
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(delay, self._start)

    def _lose(self, why: str, waiting: list[asyncio.Future[None]]) -> None:
        self.lost = why
        self._dirty_since = None
        self._next = []
        for shipped in waiting:
            if not shipped.done():
                shipped.set_exception(ShippingFailed(why))
        self._on_lost(why)
