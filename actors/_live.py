"""The table of a host's live objects: least recently used first, bounded, swept when idle.

An object enters on its first event (:meth:`LiveObjects.add`) and leaves when it is evicted:
idle for ``idle_timeout_s`` (the sweeper), beyond ``max_live_objects`` (least recently used
first), or when asked (:meth:`LiveObjects.evict`). Eviction loses only memory; closing the
file (a WAL checkpoint, about 1 ms of I/O) happens on one closer thread, so evicting a
thousand objects does not stall the others. A replicated object's file closes on the loop
(its checkpoint must not overlap a later shipping round), so the sweeper hands the loop back
every :data:`SWEEP_SLICE_S` while it evicts: the events of live objects go on between.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from ._durability import WalSync
from ._metrics import HostMetrics
from ._slot import ObjectSlot
from ._spec import BindingSpec

#: The longest the sweeper evicts before it lets the loop run other events.
SWEEP_SLICE_S = 0.005


class LiveObjects:
    """The live objects of one host, by hex id; owns the sweeper task and the closer thread."""

    def __init__(self, binding: BindingSpec, metrics: HostMetrics) -> None:
        self._binding = binding
        self._metrics = metrics
        self._slots: OrderedDict[str, ObjectSlot] = OrderedDict()
        self._sweeper: asyncio.Task[None] | None = None
        self._closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raydo-close")
        self._closed = False
        # WAL syncs of evicted objects still running: replies wait for them, so the host's
        # close() must too.
        self._syncing: list[WalSync] = []

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[ObjectSlot]:
        return iter(list(self._slots.values()))

    def ids(self) -> list[str]:
        return list(self._slots)

    def touch(self, hex_id: str) -> ObjectSlot | None:
        """The live object ``hex_id``, now the most recently used; None if it is not live."""
        slot = self._slots.get(hex_id)
        if slot is not None:
            self._slots.move_to_end(hex_id)
        return slot

    def add(self, slot: ObjectSlot) -> None:
        """A new live object: evict the least recently used beyond the bound, start sweeping."""
        hex_id = slot.object_id.hex
        self._slots[hex_id] = slot
        self._enforce_bound(keep=hex_id)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.ensure_future(self._sweep())

    def evict(self, hex_id: str) -> bool:
        """Evict one object now if it is idle; True when it was evicted."""
        slot = self._slots.get(hex_id)
        if slot is None or not slot.idle or slot.drain is not None:
            return False
        del self._slots[hex_id]
        if slot.wal_sync is not None and slot.wal_sync.busy:
            self._syncing = [s for s in self._syncing if s.busy]
            self._syncing.append(slot.wal_sync)
        slot.evict(self._close_later)
        self._metrics.evictions += 1
        return True

    def evict_idle(self, now: float | None = None) -> int:
        """Evict every object idle for ``idle_timeout_s``; how many went."""
        horizon = self._horizon(now)
        return sum(self.evict(h) for h in self._stale(horizon))

    async def evict_idle_in_slices(self, now: float | None = None) -> int:
        """As :meth:`evict_idle`, letting the loop run other events every
        :data:`SWEEP_SLICE_S`; an object used meanwhile stays. How many went."""
        horizon = self._horizon(now)
        evicted = 0
        started = time.perf_counter()
        for hex_id in self._stale(horizon):
            slot = self._slots.get(hex_id)
            if slot is not None and slot.last_used <= horizon:
                evicted += self.evict(hex_id)
            if time.perf_counter() - started >= SWEEP_SLICE_S:
                await asyncio.sleep(0)
                started = time.perf_counter()
        return evicted

    def _horizon(self, now: float | None) -> float:
        return (time.monotonic() if now is None else now) - self._binding.idle_timeout_s

    def _stale(self, horizon: float) -> list[str]:
        return [h for h, s in self._slots.items() if s.last_used <= horizon and s.idle]

    def wait_for_closes(self) -> None:
        """Block until every evicted object's file is closed (tests, shutdown)."""
        self._closer.submit(lambda: None).result()

    async def settle_syncs(self) -> None:
        """Wait until no WAL sync of a live or evicted object runs (their outputs have left)."""
        syncs = [s.wal_sync for s in self._slots.values() if s.wal_sync is not None]
        for sync in [*syncs, *self._syncing]:
            await sync.settled()
        self._syncing.clear()

    async def stop_sweeping(self) -> None:
        """Stop the sweeper and wait until it has ended."""
        self._closed = True
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    def close(self) -> None:
        """Evict every object left, whatever it is doing, and wait until its file is closed."""
        self._closed = True
        slots = list(self._slots.values())
        self._slots.clear()
        for slot in slots:
            slot.evict()
        self._closer.shutdown(wait=True)

    def _close_later(self, conn: sqlite3.Connection) -> None:
        self._closer.submit(conn.close)

    def _enforce_bound(self, keep: str) -> None:
        excess = len(self._slots) - self._binding.max_live_objects
        if excess <= 0:
            return
        for hex_id in list(self._slots)[: excess * 2]:
            if excess <= 0:
                break
            # ``keep`` is the object an event is arriving for: evicting it would hand the
            # event a closed, detached slot.
            if hex_id != keep and self.evict(hex_id):
                excess -= 1

    async def _sweep(self) -> None:
        period = min(max(self._binding.idle_timeout_s / 4, 0.05), 5.0)
        while self._slots and not self._closed:
            await asyncio.sleep(period)
            await self.evict_idle_in_slices()
