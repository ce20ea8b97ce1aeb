"""One object's replica (its log, its shipping, its restore) and a host's set of them.

Life of an :class:`ObjectReplica`, in order:

1. **Take-over** (:meth:`ObjectReplica.take_over`, before the object's first event in this
   host). The local mark says which entry the local file holds; the store is asked for the
   entries after it (one LIST). None: the local file is current (commits it holds beyond what
   was shipped were never acknowledged and are cut off its WAL) and no snapshot is read.
   Some, or no local file: the file is restored from the store. Before that, under a host
   log, the previous owner's latest version is carried over from its stream (sealed first,
   so that its host acknowledges nothing more) into the log. Then the next free place of
   the log is taken as this owner's epoch mark (one PUT; under a host log its owner id is
   the host's stream): from then on a stale owner's writes fail.
2. **Shipping** (:class:`~.shipper.Shipper`) after every commit, and a checkpoint of the WAL
   between rounds once it holds enough that was shipped. Under a host log (``sync`` with
   ``host_log``), a round puts the object's *version* (every page changed since its own
   log's last entry) in the host's stream, and only now and then (a large or late version,
   a snapshot, a bookmark, a closing host, ``write_back_s`` after the first version) writes
   those pages into the object's own log (a *direct* round).
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
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar

from .bookmarks import Bookmark, apply_retention, bookmark_for_time, current, rewind
from .carry import carry_over
from .journal import HostLog, HostLogFenced, object_digest, random_owner
from .local_mark import LocalMark, read_mark, remove_local, write_mark
from .log import Fenced, ObjectLog
from .restore import restore
from .segments import EntryKind, pages_body
from .settings import ReplicationSettings
from .shipper import Shipper, ShippingFailed
from .snapshots import build_snapshot, snapshot_due
from .store import ObjectStore, S3Store, StoreFailure
from .wal import WAL_HEADER, WalPosition, holds, read_committed, read_header, wal_file

log = logging.getLogger("raydo.replication")

#: Checkpoint the WAL between rounds once it is this long and all of it is shipped.
CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024
#: Under a host log, a round whose version (the pages changed since the object's own log's
#: last entry) would be larger than this writes them into the object's own log instead.
VERSION_MAX_BYTES = 256 * 1024
_TAKE_OVER_TRIES = 5
_DONE: Future[None] = Future()
_DONE.set_result(None)
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
    versions: int = 0
    """Rounds acknowledged from the host log (their pages are in a slot, not yet an entry)."""
    slots: int = 0
    """Slots of the host log stored: one store write each, for all the versions in it."""


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
        self._digest = object_digest(self.log.root)
        # Under a host log: the stream this owner's epoch names, and the pages changed since
        # the own log's last entry (the next version holds them all), with when they began.
        self._stream: str | None = None
        self._pages: dict[int, bytes] = {}
        self._page_size = 0
        self._database_pages = 0
        self._pages_since: float | None = None
        self._direct_next = False
        self._write_back: asyncio.TimerHandle | None = None
        # An epoch of _rejoin whose answer was lost: it may be in the store (see _settle).
        self._rejoining: ObjectLog | None = None

    def _log(self, owner: bytes) -> ObjectLog:
        replication = self._replication
        return ObjectLog(
            replication.store, replication.settings, self._binding, self.object_hex, owner
        )

    def _new_owner(self) -> None:
        replication = self._replication
        self.log = self._log(random_owner())
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
    def only_in_host_log(self) -> bool:
        """True when commits of the object are in its host's stream and not in its own log."""
        return bool(self._pages)

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
        host_log = self._replication.host_log
        self._rejoining = None  # a new ownership: an older epoch's try is not ours to repeat
        if host_log is not None and self.log.owner.hex() != host_log.stream:
            # This owner's id is its host's stream, so that every entry it writes names it.
            self.log = self._log(bytes.fromhex(host_log.stream))
        mark = read_mark(self.database)
        for _ in range(_TAKE_OVER_TRIES):
            newer = self.log.entries_after(None if mark is None else mark.seq)
            carried = None
            if host_log is not None:
                tail = newer[-1] if newer else (-1 if mark is None else mark.seq)
                carried = carry_over(self.log, tail, host_log.locate, host_log.read)
                if carried is not None:
                    newer.append(carried[0])
            if mark is not None and mark.stream is not None:
                # The local file holds a version from a host log beyond entry mark.seq: it
                # is current only if that version is the one just carried over.
                if (
                    carried is not None
                    and newer == [carried[0]]
                    and carried[1:] == (mark.stream, mark.version_ms)
                ):
                    mark = LocalMark(newer[0], mark.wal, mark.snapshot, mark.since_snapshot)
                    newer = []
                else:
                    mark = None
                    newer = newer or self.log.entries_after(None)
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
                self._stream = None if host_log is None else self.log.owner.hex()
                if host_log is not None:  # a version of an earlier owner here is in the log now
                    host_log.forget(self._digest)
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

    def begin(self, length: int, deadline: float) -> Future[None] | None:
        """On the loop: a round acknowledged from the host log, when this one can be (see
        the module's text); None when it writes the object's own log (:meth:`ship`)."""
        host_log = self._replication.host_log
        if (
            host_log is None
            or self._stream != host_log.stream  # its stream was given up: write the own log
            or self._direct_next
            or self._before_rewind is not None
        ):
            return None
        mark = self._mark
        frames = read_committed(wal_file(self.database), mark.wal, length)
        if frames is None:
            return _DONE  # nothing new (a commit that wrote nothing waited for a round)
        database_bytes = frames.database_pages * frames.page_size
        if (
            snapshot_due(mark.since_snapshot, database_bytes, mark.snapshot is not None)
            or frames.end.offset >= CHECKPOINT_WAL_BYTES  # written back, so it can checkpoint
            or (
                self._pages_since is not None
                and time.monotonic() - self._pages_since > self._settings.write_back_s
            )
        ):
            return None
        self._page_size, self._database_pages = frames.page_size, frames.database_pages
        self._pages.update(frames.pages)
        body = pages_body(self._page_size, self._database_pages, self._pages.items())
        if len(body) > VERSION_MAX_BYTES:
            return None  # ship() reads the same frames again: its pages are the same
        data = self.log.seal_version(body)
        # The stream the object's log names (its owner id), never the host's stream now: had
        # the host gone on in a new one meanwhile, the writer refuses this version.
        written, stream = self.log.stamp_of_last(), self._stream
        done: Future[None] = Future()
        stored = host_log.submit(stream, self._digest, data, deadline)
        stored.add_done_callback(
            lambda f: self._journaled(f, done, frames.end, stream, written, len(data))
        )
        return done

    def _journaled(
        self,
        stored: Future[None],
        done: Future[None],
        end: WalPosition,
        stream: str,
        written: int,
        size: int,
    ) -> None:
        """On the host log's writer, once the slot is stored (or not): the mark, then the
        round's end."""
        failure = stored.exception()
        if isinstance(failure, HostLogFenced):
            done.set_exception(Fenced(str(failure)))
            return
        if failure is not None:
            self._replication.stats.failures += 1
            done.set_exception(ShippingFailed(str(failure)))
            return
        try:
            if self._pages_since is None:
                self._pages_since = time.monotonic()
            mark = self._mark
            self._mark = LocalMark(
                mark.seq, end, mark.snapshot, mark.since_snapshot, stream, written
            )
            write_mark(self.database, self._mark)
        except Exception as exc:  # noqa: BLE001 - the round fails, the object is reset
            done.set_exception(exc)
            return
        stats = self._replication.stats
        stats.versions += 1
        stats.bytes_shipped += size
        done.set_result(None)

    def ship(self, length: int, deadline: float) -> None:
        """On a replication thread: a round that writes the object's own log (a snapshot, or
        every page changed since its last entry)."""
        if self._before_rewind is not None:
            raise Fenced(
                "the object was restored to a bookmark: what it wrote after"
                " on_next_session_restore_bookmark() in the same session is dropped"
            )
        direct_asked, self._direct_next = self._direct_next, False
        mark = self._mark
        frames = read_committed(wal_file(self.database), mark.wal, length)
        if frames is None and not (direct_asked and self._pages):
            return
        if frames is not None:
            self._page_size, self._database_pages = frames.page_size, frames.database_pages
        database_bytes = self._database_pages * self._page_size
        end = mark.wal if frames is None else frames.end
        if frames is not None and snapshot_due(
            mark.since_snapshot, database_bytes, mark.snapshot is not None
        ):
            snapshot = build_snapshot(self.database, frames.end)
            self._direct(EntryKind.SNAPSHOT, snapshot, end, deadline)
            return
        pages = self._pages
        if frames is not None:
            pages.update(frames.pages)
        body = pages_body(self._page_size, self._database_pages, pages.items())
        self._direct(EntryKind.SEGMENT, body, end, deadline)

    def _direct(self, kind: EntryKind, body: bytes, end: WalPosition, deadline: float) -> None:
        """A round that writes the object's own log: a snapshot, or every page changed since
        its last entry (the versions in the host log since then included)."""
        stats = self._replication.stats
        mark = self._mark
        delay = 0.05
        while True:
            try:
                if self._rejoining is not None:
                    self._settle_rejoin(self._rejoining)
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
        self._pages = {}
        self._pages_since = None
        host_log = self._replication.host_log
        if host_log is not None:
            host_log.forget(self._digest)
        if kind is EntryKind.SNAPSHOT:
            self._mark = LocalMark(seq, end, seq, 0)
            self._retain()
        else:
            self._mark = LocalMark(seq, end, mark.snapshot, mark.since_snapshot + len(body))
        if host_log is not None and self._stream != host_log.stream:
            epoch = self._rejoin(host_log, seq)
            if epoch is not None:
                self._mark = replace(self._mark, seq=epoch)
        write_mark(self.database, self._mark)
        # Counted once the round is done, retention's requests included: whoever reads the
        # counters sees an entry only when nothing of its round is still under way.
        if kind is EntryKind.SNAPSHOT:
            stats.snapshots += 1
        else:
            stats.segments += 1
        stats.bytes_shipped += len(body)

    def _rejoin(self, host_log: HostLog, seq: int) -> int | None:
        """After a direct round of an object whose stream was given up (entry ``seq`` holds
        all its commits): take its log again under the host's stream now, an epoch after
        that entry, so that its rounds go to the host log again; the epoch's place, or None
        (another owner wrote: the next round finds out; the store failed: a later round
        tries again)."""
        stream = host_log.stream
        rejoined = self._log(bytes.fromhex(stream))
        rejoined.tail, rejoined.tail_ms = seq, self.log.tail_ms
        try:
            epoch = rejoined.take_epoch(seq)
        except StoreFailure:
            self._rejoining = rejoined
            return None
        if epoch is not None:
            self.log, self._stream = rejoined, stream
        return epoch

    def _settle_rejoin(self, rejoined: ObjectLog) -> None:
        """Before the next entry after a :meth:`_rejoin` whose epoch failed: that epoch may
        have landed (only its answer lost), in the place the entry would take. Its very
        bytes are sent again (:meth:`ObjectLog.append` repeats a failed try): found there,
        or stored now, the log is taken again under that stream and the entry goes after
        the epoch; another owner's bytes there leave the log as it was, whose append then
        says so. :class:`StoreFailure` when the store fails again (the round retries)."""
        epoch = rejoined.take_epoch(rejoined.tail)
        self._rejoining = None
        if epoch is not None:
            self.log, self._stream = rejoined, rejoined.owner.hex()
            self._mark = replace(self._mark, seq=epoch)

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
        if self._pages and self._write_back is None:
            loop = asyncio.get_running_loop()
            self._write_back = loop.call_later(self._settings.write_back_s, self._written_back)
        core = self._core
        mark = self._mark
        if (
            core is None
            or self._pages
            or not self.shipper.idle
            or mark.wal.offset < CHECKPOINT_WAL_BYTES
        ):
            return
        if self.wal_length() != mark.wal.offset or not core.checkpoint():
            return  # a commit since (it ships first), or a transaction is open
        self._mark = LocalMark(mark.seq, WalPosition(), mark.snapshot, mark.since_snapshot)
        write_mark(self.database, self._mark)

    def _written_back(self) -> None:
        """``write_back_s`` after the first version: a direct round, even for an idle object,
        so that its commits do not stay in the host's stream."""
        self._write_back = None
        self.write_back_soon()

    def write_back_soon(self) -> None:
        """Have the next round write every page the host log holds into the own log."""
        if self._pages and self.shipper.lost is None:
            self._direct_next = True
            self.shipper.kick()

    async def write_back(self) -> None:
        """Write what only the host log holds into the object's own log, and wait for it."""
        self.write_back_soon()
        await self.shipper.settled()

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
        await self.write_back()  # bookmarks name entries of the object's own log
        if self.shipper.lost is not None:
            raise ShippingFailed(self.shipper.lost)

    async def _off_loop(self, fn: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._replication.executor, fn, *args)

    # ---- loss ----------------------------------------------------------------------------

    def _lost(self, why: str) -> None:
        self._replication.stats.fenced += "another owner" in why or "sealed" in why
        log.error("%s: dropping the object: %s", self.log.root, why)
        self._on_lost(why)

    def discard_local(self) -> None:
        """Forget the local file (the storage core is closed): the next event restores the
        object from the store under a new ownership."""
        self.shipper.close()
        self._cancel_write_back()
        remove_local(self.database)
        self.ready = False
        self._mark = LocalMark(-1)
        self._oldest_unshipped = None
        self._before_rewind = None
        self._stream = None
        self._pages = {}
        self._pages_since = None
        self._direct_next = False
        self._rejoining = None
        self._new_owner()

    def _cancel_write_back(self) -> None:
        if self._write_back is not None:
            self._write_back.cancel()
            self._write_back = None

    def close(self) -> None:
        self.shipper.close()
        self._cancel_write_back()


def _ignore(why: str) -> None:
    pass


class Replication:
    """The replicas of one host's objects, the store, and the threads store I/O runs on."""

    #: Replicas kept for objects not live any more (each spares its object a take-over).
    KEPT = 100_000

    def __init__(self, settings: ReplicationSettings, store: ObjectStore | None = None) -> None:
        self.settings = settings
        self.store: ObjectStore = store if store is not None else S3Store(settings)
        # A round under a host log waits for its slot on one of these (no GIL held).
        self.executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="raydo-replica")
        self.host_log = (
            HostLog(self.store, settings) if settings.mode == "sync" and settings.host_log else None
        )
        self._stats = ReplicationStats()
        self._replicas: OrderedDict[str, ObjectReplica] = OrderedDict()

    @property
    def stats(self) -> ReplicationStats:
        """The counters, the host log's slots brought up to date."""
        if self.host_log is not None:
            self._stats.slots = self.host_log.slots
        return self._stats

    def replica(self, binding: str, object_hex: str, database: Path) -> ObjectReplica:
        """The replica of one object, kept from an earlier activation when there was one."""
        found = self._replicas.get(object_hex)
        if found is None:
            found = self._replicas[object_hex] = ObjectReplica(self, binding, object_hex, database)
            if len(self._replicas) > self.KEPT:
                for hex_id in list(self._replicas)[: len(self._replicas) - self.KEPT]:
                    kept = self._replicas[hex_id]
                    if kept.idle and not kept.only_in_host_log:
                        kept.close()
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
        await asyncio.gather(*(replica.write_back() for replica in list(self._replicas.values())))

    def close(self) -> None:
        for replica in self._replicas.values():
            replica.close()
        if self.host_log is not None:
            self.host_log.close()
        self.executor.shutdown(wait=True)
