"""One object's replica (its log, its shipping, its restore) and a host's set of them.

Life of an :class:`ObjectReplica`, in order:

1. **Take-over** (:meth:`ObjectReplica.take_over`, before the object's first event in this
   host). The local mark says which entry the local file holds; the store is asked for the
   entries after it (one LIST). None: the local file is current (commits it holds beyond what
   was shipped were never acknowledged and are cut off its WAL) and no snapshot is read.
   Some, or no local file: the file is restored from the store. Then the next free place of
   the log is taken as this owner's epoch mark (one PUT): from then on a stale owner's
   writes fail.
2. **Shipping** (:class:`~.shipper.Shipper`) after every commit, and a checkpoint of the WAL
   between rounds once it holds enough that was shipped.
3. **Loss**: a fenced log, or (``sync``) a commit not stored by its deadline: the host drops
   the object and :meth:`ObjectReplica.discard_local` deletes the local file; the next event
   takes over again, restoring from the store.

The host keeps its replicas past their objects' eviction (:class:`Replication`), so an object
evicted and activated again in the same process makes no store request at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from .bookmarks import Bookmark, apply_retention, bookmark_for_time, current, rewind
from .local_mark import LocalMark, read_mark, remove_local, write_mark
from .log import Fenced, ObjectLog
from .restore import restore
from .segments import EntryKind, segment_body
from .settings import ReplicationSettings
from .shipper import Shipper, ShippingFailed
from .snapshots import build_snapshot, snapshot_due
from .store import ObjectStore, S3Store, StoreFailure
from .wal import WAL_HEADER, WalPosition, holds, read_committed, read_header, wal_file

log = logging.getLogger("raydo.replication")

#: Checkpoint the WAL between rounds once it is this long and all of it is shipped.
CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024
_TAKE_OVER_TRIES = 5
_T = TypeVar("_T")


class Checkpointing(Protocol):
    """What a replica needs of the object's storage core."""

    def checkpoint(self) -> bool:
        """Checkpoint the WAL into the database and empty it now; False when it cannot."""
        ...


@dataclass(slots=True)
class ReplicationStats:
    """Counters of one host's replication (exported as metrics)."""

    segments: int = 0
    snapshots: int = 0
    bytes_shipped: int = 0
    failures: int = 0
    restores: int = 0
    restore_seconds: float = 0.0
    take_overs: int = 0
    fenced: int = 0


class ObjectReplica:
    """The replica of one object (see the module's text)."""

    def __init__(
        self, replication: Replication, binding: str, object_hex: str, database: Path
    ) -> None:
        self._replication = replication
        self._binding = binding
        self.object_hex = object_hex
        self.database = database
        self.ready = False
        self._core: Checkpointing | None = None
        self._on_lost: Callable[[str], None] = _ignore
        self._mark = LocalMark(-1)
        self._oldest_unshipped: float | None = None
        self._before_rewind: Bookmark | None = None
        self._new_owner()

    def _new_owner(self) -> None:
        replication = self._replication
        self.log = ObjectLog(
            replication.store,
            replication.settings,
            self._binding,
            self.object_hex,
            secrets.token_bytes(16),
        )
        settings = replication.settings
        self.shipper = Shipper(
            self,
            replication.executor,
            sync=settings.mode == "sync",
            deadline_s=settings.sync_deadline_s,
            interval_s=settings.async_interval_s,
            on_lost=self._lost,
        )

    def attach(self, core: Checkpointing, on_lost: Callable[[str], None]) -> None:
        """Bind the replica to its object's storage core and the host's loss callback."""
        self._core = core
        self._on_lost = on_lost

    @property
    def idle(self) -> bool:
        return self.shipper.idle

    @property
    def lost(self) -> str | None:
        return self.shipper.lost

    @property
    def rewound(self) -> bool:
        """True once this session restored the log to a bookmark: the object's next
        activation takes the log over again (and so restores that state)."""
        return self._before_rewind is not None

    @property
    def oldest_unshipped(self) -> float | None:
        """When the oldest commit not yet in the store was made (time.time()), or None."""
        return self._oldest_unshipped

    # ---- take-over -------------------------------------------------------------------

    async def take_over(self) -> None:
        """Make the local file the store's latest state and take the log (see the module's
        text); runs on the replication threads."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._replication.executor, self._take_over)
        self.ready = True

    def _take_over(self) -> None:
        stats = self._replication.stats
        mark = read_mark(self.database)
        for _ in range(_TAKE_OVER_TRIES):
            newer = self.log.entries_after(None if mark is None else mark.seq)
            if mark is not None and not newer:
                if not self._trim_unshipped(mark):
                    mark = None
                    continue
            elif newer:
                started = time.perf_counter()
                restored = restore(self.log, self.database, newer[-1])
                stats.restores += 1
                stats.restore_seconds += time.perf_counter() - started
                mark = LocalMark(
                    restored.seq, WalPosition(), restored.snapshot, restored.since_snapshot
                )
            else:  # a log with nothing in it: the local file, if any, predates replication
                mark = LocalMark(-1, WalPosition(), None, 0)
            epoch = self.log.take_epoch(mark.seq)
            if epoch is not None:
                self._before_rewind = None
                self._mark = LocalMark(epoch, mark.wal, mark.snapshot, mark.since_snapshot)
                if self.database.exists():
                    write_mark(self.database, self._mark)
                stats.take_overs += 1
                return
            log.info("%s: the log moved while taking it over; reading it again", self.log.root)
        raise StoreFailure(f"{self.log.root}: could not take the object's log over")

    def _trim_unshipped(self, mark: LocalMark) -> bool:
        """Cut what the local WAL holds beyond what was shipped; False when the WAL is not
        the one the mark speaks of (then only a restore can be trusted)."""
        wal = wal_file(self.database)
        header = read_header(wal)
        if header is None:
            return True  # no WAL: everything is in the database file, and all was shipped
        _, salts = header
        shm = self.database.with_name(self.database.name + "-shm")
        if mark.wal.salts is None:
            wal.unlink(missing_ok=True)
            shm.unlink(missing_ok=True)
            return True
        if salts != mark.wal.salts:
            log.warning("%s: the local WAL is not the one shipped; restoring", self.log.root)
            return False
        if not holds(wal, mark.wal):
            # Frames the mark says were shipped are gone or torn (a power loss took them, the
            # mark having reached the disk first): the file is behind what was acknowledged.
            log.warning("%s: the local WAL lost shipped commits; restoring", self.log.root)
            return False
        if wal.stat().st_size > mark.wal.offset:
            log.warning(
                "%s: dropping commits the local file holds that never reached the store",
                self.log.root,
            )
            os.truncate(wal, max(mark.wal.offset, WAL_HEADER))
            shm.unlink(missing_ok=True)
        return True

    # ---- shipping (called by the shipper) -----------------------------------------------

    def wal_length(self) -> int:
        if self._oldest_unshipped is None:
            self._oldest_unshipped = time.time()
        try:
            return os.stat(wal_file(self.database)).st_size
        except FileNotFoundError:
            return 0

    def ship(self, length: int, deadline: float) -> None:
        if self._before_rewind is not None:
            raise Fenced(
                "the object was restored to a bookmark: what it wrote after"
                " on_next_session_restore_bookmark() in the same session is dropped"
            )
        mark = self._mark
        frames = read_committed(wal_file(self.database), mark.wal, length)
        if frames is None:
            return
        stats = self._replication.stats
        database_bytes = frames.database_pages * frames.page_size
        if snapshot_due(mark.since_snapshot, database_bytes, mark.snapshot is not None):
            kind, body = EntryKind.SNAPSHOT, build_snapshot(self.database, frames.end)
        else:
            kind, body = EntryKind.SEGMENT, segment_body(frames)
        delay = 0.05
        while True:
            try:
                seq = self.log.append(kind, body)
                break
            except StoreFailure as exc:
                stats.failures += 1
                if time.monotonic() + delay > deadline:
                    raise ShippingFailed(
                        f"the replication store did not take the commit in time ({exc});"
                        " it was not acknowledged: a retry may be needed"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        if kind is EntryKind.SNAPSHOT:
            self._mark = LocalMark(seq, frames.end, seq, 0)
            self._retain()
        else:
            self._mark = LocalMark(seq, frames.end, mark.snapshot, mark.since_snapshot + len(body))
        write_mark(self.database, self._mark)
        # Counted once the round is done, retention's requests included: whoever reads the
        # counters sees an entry only when nothing of its round is still under way.
        if kind is EntryKind.SNAPSHOT:
            stats.snapshots += 1
        else:
            stats.segments += 1
        stats.bytes_shipped += len(body)

    def _retain(self) -> None:
        """Retention, after a snapshot (the only time it can free anything): a failure is
        logged and left to the next snapshot."""
        try:
            apply_retention(self.log, self._replication.settings)
        except Exception as exc:  # noqa: BLE001 - retention never fails a commit
            log.warning("%s: retention failed: %s", self.log.root, exc)

    def shipped(self) -> None:
        if self.shipper.idle:
            self._oldest_unshipped = None
        core = self._core
        mark = self._mark
        if core is None or not self.shipper.idle or mark.wal.offset < CHECKPOINT_WAL_BYTES:
            return
        if self.wal_length() != mark.wal.offset or not core.checkpoint():
            return  # a commit since (it ships first), or a transaction is open
        self._mark = LocalMark(mark.seq, WalPosition(), mark.snapshot, mark.since_snapshot)
        write_mark(self.database, self._mark)

    # ---- point in time (ctx.storage, between the event's commit and its end) ----------

    async def current_bookmark(self) -> str:
        """The bookmark of everything committed so far (it ships first)."""
        await self._settled()
        return str(current(self.log))

    async def bookmark_for_time(self, when_ms: int) -> str:
        """The bookmark of the last round shipped at or before ``when_ms``."""
        await self._settled()
        if when_ms >= self.log.tail_ms:
            return str(current(self.log))
        return str(await self._off_loop(bookmark_for_time, self.log, self._settings, when_ms))

    async def restore_on_next_session(self, bookmark: Bookmark) -> str:
        """Restore the log to ``bookmark`` (a new snapshot of that state after its tail) for
        the object's next session; the bookmark that undoes it."""
        await self._settled()
        undo = self._before_rewind or current(self.log)
        await self._off_loop(
            rewind, self.log, self._settings, bookmark, self.database.parent / ".rewind"
        )
        self._before_rewind = undo
        return str(undo)

    @property
    def _settings(self) -> ReplicationSettings:
        return self._replication.settings

    async def _settled(self) -> None:
        await self.shipper.settled()
        if self.shipper.lost is not None:
            raise ShippingFailed(self.shipper.lost)

    async def _off_loop(self, fn: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._replication.executor, fn, *args)

    # ---- loss ----------------------------------------------------------------------------

    def _lost(self, why: str) -> None:
        self._replication.stats.fenced += "another owner" in why
        log.error("%s: dropping the object: %s", self.log.root, why)
        self._on_lost(why)

    def discard_local(self) -> None:
        """Forget the local file (the storage core is closed): the next event restores the
        object from the store under a new ownership."""
        self.shipper.close()
        remove_local(self.database)
        self.ready = False
        self._mark = LocalMark(-1)
        self._oldest_unshipped = None
        self._before_rewind = None
        self._new_owner()


def _ignore(why: str) -> None:
    pass


class Replication:
    """The replicas of one host's objects, the store, and the threads store I/O runs on."""

    #: Replicas kept for objects not live any more (each spares its object a take-over).
    KEPT = 100_000

    def __init__(self, settings: ReplicationSettings, store: ObjectStore | None = None) -> None:
        self.settings = settings
        self.store: ObjectStore = store if store is not None else S3Store(settings)
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="raydo-replica")
        self.stats = ReplicationStats()
        self._replicas: OrderedDict[str, ObjectReplica] = OrderedDict()

    def replica(self, binding: str, object_hex: str, database: Path) -> ObjectReplica:
        """The replica of one object, kept from an earlier activation when there was one."""
        found = self._replicas.get(object_hex)
        if found is None:
            found = self._replicas[object_hex] = ObjectReplica(self, binding, object_hex, database)
            if len(self._replicas) > self.KEPT:
                for hex_id in list(self._replicas)[: len(self._replicas) - self.KEPT]:
                    if self._replicas[hex_id].idle:
                        del self._replicas[hex_id]
        else:
            self._replicas.move_to_end(object_hex)
        return found

    def behind(self) -> list[ObjectReplica]:
        """The replicas with commits not yet in the store."""
        return [r for r in self._replicas.values() if not r.idle]

    def snapshot(self) -> dict[str, float | int]:
        """The counters and, as gauges, how many objects have commits not in the store and
        how long the oldest of those commits has waited (seconds; 0 when none waits)."""
        behind = self.behind()
        oldest = min(
            (r.oldest_unshipped for r in behind if r.oldest_unshipped is not None),
            default=None,
        )
        return {
            **asdict(self.stats),
            "objects_behind": len(behind),
            "lag_seconds": 0.0 if oldest is None else max(time.time() - oldest, 0.0),
        }

    async def settle(self) -> None:
        """Ship what waits and wait for every round (a closing host's last commits)."""
        for replica in list(self._replicas.values()):
            await replica.shipper.settled()

    def close(self) -> None:
        for replica in self._replicas.values():
            replica.shipper.close()
        self.executor.shutdown(wait=True)
