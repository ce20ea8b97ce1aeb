"""The host log: one stream of slots per host process, each slot one store write carrying the
commits of every object that waited while the slot before it was in flight.

::

    <prefix>/_journal/<stream>/<n>   slots 0, 1, 2 ... (16 hex digits), each created with
                                     If-None-Match: *, one at a time

Why: under ``sync`` replication every commit of a different object used to be its own store
write (its object's log entry), and with many busy objects the store's cost per request was
the bound. A slot carries many objects' **versions**: a version of an object is a sealed
entry (:class:`~.segments.Entry`, a segment) holding every page the object changed since the
last entry of its own log (cumulative, so only an object's latest version matters). Now and
then (a round that is large, late, a snapshot, a bookmark, an eviction, a closing host) an
object writes its pages into its own log instead (a *direct* round) and the stream forgets
it. Its own log stays the record that snapshots, bookmarks and retention work on.

What happens, in order:

1. A round of an object calls :meth:`HostLog.submit` with its version; the writer thread
   puts everything submitted since its last slot into the next one and, once the store holds
   it, resolves the futures (the objects' outputs may leave).
2. Every :data:`INDEX_EVERY`-th slot also carries the whole map (object -> where its latest
   version lies), so a reader finds every object's latest version from the last index slot
   and the slots after it. Slots no map entry points at any more, before the last index slot,
   are deleted, by a thread of their own beside the writer (one delete takes several slots'
   time, which the commits waiting for the next slot would otherwise wait too).
3. **Fencing.** An object's owner under a host log has its stream's id as its own, so every
   entry of the object's log names the stream of its writer. A new owner *seals* the stream
   of the log's last entry: it creates the next free slot as a seal (:func:`seal_and_read`).
   The writer's next slot then finds its place taken, so it acknowledges nothing more: the
   versions of that slot fail (their objects are dropped and taken over again) and it goes
   on in a new stream. The owner that sealed reads
   the stream up to the seal: acknowledged versions are all there, since a version is
   acknowledged only once its slot is stored, and no slot can follow the seal.
4. **A store failure** past the oldest waiting version's deadline fails the slot's versions
   (they were not acknowledged) and the writer goes on in a new stream. The slot may land
   late; the next owner of an object of the old stream seals it before reading it, so such
   a slot is read (its versions were not acknowledged, and may appear) or refused.
5. **An object of a stream given up** (sealed, or after a failure) writes its next round
   into its own log (``direct``: its id, which every entry it writes carries, is the old
   stream's), then takes its log again under the new stream (an epoch after that entry).
   Once every object with a version in the old stream has done so (or was taken over in
   this host again), the old stream is deleted.

An idle host writes nothing: slots exist only for rounds.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import struct
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from .segments import HEAD_BYTES, CorruptEntry, Entry, EntryKind, head_of, now_ms
from .settings import ReplicationSettings
from .store import ObjectStore, StoreFailure

log = logging.getLogger("raydo.replication")

#: Every this many slots, a slot carries the whole map (the readers' starting point).
INDEX_EVERY = 32
#: Versions stop joining a slot once it holds this many bytes (the rest go in the next).
SLOT_MAX_BYTES = 8 * 1024 * 1024
#: Slots to gather before one delete request removes them.
DELETE_BATCH = 64
_DIGITS = 16
_COUNT = struct.Struct(">I")
_VERSION = struct.Struct(">16sI")
_INDEX = struct.Struct(">16sQII")
_SEAL_TRIES = 32
_KEPT_STREAMS = 64


class HostLogFenced(StoreFailure):
    """The host's stream was sealed or given up: what it carried is acknowledged and safe,
    but no version goes into it any more; its objects take over again."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where an object's latest version lies: a slot, and the bytes of it."""

    slot: int
    offset: int
    length: int


@dataclass(slots=True)
class _Pending:
    stream: str
    digest: bytes
    version: bytes
    deadline: float
    done: Future[None] = field(default_factory=Future)


#: The last byte of every stream's id: an owner id without it (a random one, written before
#: host logs or by a tool) names no stream, and a new owner seals nothing for it.
STREAM_TAG = 0xB5


def new_stream_id() -> bytes:
    return secrets.token_bytes(15) + bytes([STREAM_TAG])


def random_owner() -> bytes:
    """An owner id that names no stream (an owner without a host log, or a tool)."""
    owner = secrets.token_bytes(16)
    return owner if owner[-1] != STREAM_TAG else owner[:-1] + bytes([STREAM_TAG ^ 1])


def names_a_stream(owner: bytes) -> bool:
    return len(owner) == 16 and owner[-1] == STREAM_TAG


def object_digest(root: str) -> bytes:
    """The 16 bytes that name an object (its log's root) in a stream."""
    return hashlib.sha256(root.encode()).digest()[:16]


def stream_prefix(settings: ReplicationSettings, stream: str) -> str:
    return settings.key("_journal", stream) + "/"


def slot_key(settings: ReplicationSettings, stream: str, slot: int) -> str:
    return f"{stream_prefix(settings, stream)}{slot:0{_DIGITS}x}"


def encode_slot(
    stream: bytes,
    versions: list[tuple[bytes, bytes]],
    index: dict[bytes, Location] | None,
    slot: int,
) -> tuple[bytes, list[Location]]:
    """The sealed bytes of a slot and where each of ``versions`` lies in them. ``index`` (an
    index slot's map, before this slot's versions) is written with them applied."""
    head = [_COUNT.pack(len(versions))]
    head += [_VERSION.pack(digest, len(data)) for digest, data in versions]
    indexed = None if index is None else {**index, **dict.fromkeys(d for d, _ in versions)}
    count = 0 if indexed is None else len(indexed)
    at = HEAD_BYTES + sum(map(len, head)) + _COUNT.size + count * _INDEX.size
    places: list[Location] = []
    for _, data in versions:
        places.append(Location(slot, at, len(data)))
        at += len(data)
    head.append(_COUNT.pack(count))
    if index is not None:
        merged = dict(index)
        merged.update((digest, place) for (digest, _), place in zip(versions, places, strict=True))
        head += [_INDEX.pack(d, p.slot, p.offset, p.length) for d, p in merged.items()]
    body = b"".join([*head, *(data for _, data in versions)])
    data = Entry(EntryKind.JOURNAL, stream, now_ms(), body).seal()
    return data, places


def decode_slot(
    data: bytes | memoryview, slot: int, where: str
) -> tuple[EntryKind, dict[bytes, Location] | None, list[tuple[bytes, Location]]]:
    """A slot's kind, its map (index slots only) and its versions' places."""
    entry = Entry.unseal(data, where)
    if entry.kind is EntryKind.SEAL:
        return entry.kind, None, []
    if entry.kind is not EntryKind.JOURNAL:
        raise CorruptEntry(f"{where}: not a slot of a host log")
    body = entry.body
    try:
        (count,) = _COUNT.unpack_from(body, 0)
        at = _COUNT.size
        sizes = []
        for _ in range(count):
            digest, length = _VERSION.unpack_from(body, at)
            sizes.append((bytes(digest), length))
            at += _VERSION.size
        (indexed,) = _COUNT.unpack_from(body, at)
        at += _COUNT.size
        index: dict[bytes, Location] | None = {} if slot % INDEX_EVERY == 0 else None
        for _ in range(indexed):
            digest, s, offset, length = _INDEX.unpack_from(body, at)
            if index is not None:
                index[bytes(digest)] = Location(s, offset, length)
            at += _INDEX.size
    except struct.error:
        raise CorruptEntry(f"{where}: a slot whose header is cut short") from None
    offset = HEAD_BYTES + at
    versions = []
    for digest, length in sizes:
        versions.append((digest, Location(slot, offset, length)))
        offset += length
    if offset != HEAD_BYTES + len(body):
        raise CorruptEntry(f"{where}: a slot whose versions do not fill it")
    return entry.kind, index, versions


def seal_and_read(
    store: ObjectStore, settings: ReplicationSettings, stream: str
) -> dict[bytes, Location]:
    """Seal another host's stream (see the module's text) and read where each object's latest
    version lies in it, as of the seal.

    A busy writer may win the next free slot again and again, so each try seals one slot
    further ahead; the slots it skipped are then sealed too, lowest first (a writer writes
    them in order, so the first seal created is where the stream ends)."""
    prefix = stream_prefix(settings, stream)
    for attempt in range(_SEAL_TRIES):
        slots = [int(key[len(prefix) :], 16) for key in store.keys(prefix)]
        if not slots:
            if store.create(slot_key(settings, stream, 0), _seal_bytes()):
                return {}
            continue
        top = slots[-1]
        if _kind_of(store, settings, stream, top) is not EntryKind.SEAL:
            top += 1 + attempt
            if not store.create(slot_key(settings, stream, top), _seal_bytes()):
                continue
        end = _close_gaps(
            store, settings, stream, slots, _last_index(store, settings, stream, slots), top
        )
        below = [int(key[len(prefix) :], 16) for key in store.keys(prefix)]
        return _read_map(store, settings, stream, [s for s in below if s < end])
    raise StoreFailure(f"{prefix}: could not seal the host log (it kept growing)")


def _last_index(
    store: ObjectStore, settings: ReplicationSettings, stream: str, slots: list[int]
) -> int:
    """The last listed slot that is an index slot (not a seal in an index slot's place),
    else the first listed slot."""
    for slot in reversed(slots):
        if slot % INDEX_EVERY == 0 and (
            _kind_of(store, settings, stream, slot) is EntryKind.JOURNAL
        ):
            return slot
    return slots[0]


def _close_gaps(
    store: ObjectStore,
    settings: ReplicationSettings,
    stream: str,
    slots: list[int],
    floor: int,
    top: int,
) -> int:
    """Seal every free slot between the last index slot ``floor`` and the seal at ``top``,
    lowest first; where the stream ends: the first seal created, else ``top``. A slot that
    cannot be created holds what its writer stored, or another owner's seal.

    Not below ``floor``: the writer deletes old slots there while it writes (in any order,
    so a listing may miss one), and a seal in a deleted slot's place would end the stream
    before its last index. Above it the writer deletes nothing."""
    listed = set(slots)
    for gap in range(floor, top):
        if gap not in listed and store.create(slot_key(settings, stream, gap), _seal_bytes()):
            return gap
    return top


def _read_map(
    store: ObjectStore, settings: ReplicationSettings, stream: str, slots: list[int]
) -> dict[bytes, Location]:
    """The map as of the last of ``slots``: the last index slot's, then each slot after it."""
    data_slots = sorted(slots)
    if not data_slots:
        return {}
    indexes = [s for s in data_slots if s % INDEX_EVERY == 0]
    if not indexes:
        raise CorruptEntry(f"{_where(stream)}: no index slot before slot {data_slots[-1]}")
    start = indexes[-1]
    found: dict[bytes, Location] = {}
    for slot in range(start, data_slots[-1] + 1):
        if slot not in slots:
            raise CorruptEntry(f"{_where(stream)}: slot {slot} is missing")
        kind, index, versions = decode_slot(
            _must_get(store, settings, stream, slot), slot, _where(stream)
        )
        if kind is EntryKind.SEAL:
            break  # another owner's seal: nothing after it was written by the stream's host
        if index is not None:
            found = index
        else:
            found.update(versions)
    return found


def read_version(
    store: ObjectStore, settings: ReplicationSettings, stream: str, place: Location
) -> tuple[Entry, bytes]:
    """The version at ``place`` of ``stream``, checked, and its sealed bytes."""
    key = slot_key(settings, stream, place.slot)
    data = store.read_range(key, place.offset, place.length)
    if data is None or len(data) != place.length:
        raise CorruptEntry(f"{key}: a version is missing from the host log")
    entry = Entry.unseal(data, key)
    if entry.kind is not EntryKind.SEGMENT:
        raise CorruptEntry(f"{key}: a version that is not a segment")
    return entry, data


def _kind_of(
    store: ObjectStore, settings: ReplicationSettings, stream: str, slot: int
) -> EntryKind:
    """A slot's kind from its head alone (a ranged GET; its reader checks the rest)."""
    key = slot_key(settings, stream, slot)
    head = store.head(key, HEAD_BYTES)
    if head is None:
        raise CorruptEntry(f"{key}: the slot is missing from the store")
    return head_of(head, key)[0]


def _must_get(
    store: ObjectStore, settings: ReplicationSettings, stream: str, slot: int
) -> bytes | memoryview:
    key = slot_key(settings, stream, slot)
    data = store.get(key)
    if data is None:
        raise CorruptEntry(f"{key}: the slot is missing from the store")
    return data


def _seal_bytes() -> bytes:
    return Entry(EntryKind.SEAL, random_owner(), now_ms(), b"").seal()


def _where(stream: str) -> str:
    return f"host log {stream}"


class HostLog:
    """This host's stream (see the module's text): one writer thread, one slot in flight."""

    def __init__(self, store: ObjectStore, settings: ReplicationSettings) -> None:
        self._store = store
        self._settings = settings
        self._lock = threading.Condition()
        self._pending: list[_Pending] = []
        self._closing = False
        self._map: dict[bytes, Location] = {}
        self._sealed: OrderedDict[str, dict[bytes, Location]] = OrderedDict()
        self._retired: dict[str, dict[bytes, Location]] = {}
        self._next = 0
        self.stream: str = ""
        self.slots = 0
        """Slots stored (all streams of this host): the counter behind the metrics."""
        self._new_stream()
        # Old slots are deleted beside the writer: one DeleteObjects takes as long as
        # several slots, and the commits waiting for the next slot would wait for it too.
        self._deletes = ThreadPoolExecutor(1, thread_name_prefix="raydo-host-log-deletes")
        self._deleting = False
        self._thread = threading.Thread(target=self._run, name="raydo-host-log", daemon=True)
        self._thread.start()

    def _new_stream(self) -> None:
        if self._next:
            # Kept until every object with a version in it has written its own log or been
            # taken over here again (``forget``); then deleted. One taken over by another
            # host keeps it: nothing here can tell it is no longer needed.
            self._retired[self.stream] = self._map
        self._stream_bytes = new_stream_id()
        self.stream = self._stream_bytes.hex()
        """The stream this host writes now (named in the epoch of every object it owns)."""
        self._next = 0
        self._map = {}
        self._last_index = 0
        self._index_floor = 0
        self._oldest_kept = 0

    # ---- the objects' side ---------------------------------------------------------------

    def submit(
        self, stream: str, root_digest: bytes, version: bytes, deadline: float
    ) -> Future[None]:
        """Put ``version`` in the next slot of ``stream`` (the one the object's epoch names);
        a future resolved once the store holds it, or failed: :class:`HostLogFenced` when
        ``stream`` is not written any more, :class:`StoreFailure` past ``deadline``."""
        item = _Pending(stream, root_digest, version, deadline)
        with self._lock:
            if self._closing:
                item.done.set_exception(StoreFailure("the host is closing"))
            else:
                self._pending.append(item)
                self._lock.notify_all()
        return item.done

    def forget(self, root_digest: bytes) -> None:
        """The object's pages are in its own log now: its versions here are not needed. A
        stream this host gave up is deleted once none of its versions is (off the loop:
        this may make store requests)."""
        with self._lock:
            self._map.pop(root_digest, None)
            emptied = []
            for stream, versions in self._retired.items():
                if versions.pop(root_digest, None) is not None and not versions:
                    emptied.append(stream)
        for stream in emptied:
            self._delete_stream(stream)

    def _delete_stream(self, stream: str) -> None:
        prefix = stream_prefix(self._settings, stream)
        try:
            self._store.delete(self._store.keys(prefix))
        except StoreFailure as exc:
            log.warning("%s: could not delete the host log: %s", prefix, exc)
            return
        with self._lock:
            self._retired.pop(stream, None)

    @property
    def retired(self) -> list[str]:
        """The streams this host gave up that are still kept (their objects' versions)."""
        with self._lock:
            return list(self._retired)

    def locate(self, stream: str, root_digest: bytes) -> Location | None:
        """Where the object's latest version lies in ``stream``; another host's stream is
        sealed first (and read once per process)."""
        if stream == self.stream:
            with self._lock:
                return self._map.get(root_digest)
        found = self._sealed.get(stream)
        if found is None:
            found = seal_and_read(self._store, self._settings, stream)
            self._sealed[stream] = found
            while len(self._sealed) > _KEPT_STREAMS:
                self._sealed.popitem(last=False)
        return found.get(root_digest)

    def read(self, stream: str, place: Location) -> tuple[Entry, bytes]:
        return read_version(self._store, self._settings, stream, place)

    def close(self) -> None:
        """Stop the writer once what waits is written, then wait for the deletion of old
        slots in progress; an emptied stream is deleted."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._thread.join()
        self._deletes.shutdown(wait=True)
        finished = [s for s, versions in self._retired.items() if not versions]
        if not self._map and self._next:
            finished.append(self.stream)
        for stream in finished:
            self._delete_stream(stream)

    # ---- the writer ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._lock.wait()
                if not self._pending:
                    return
                taken, size = 0, 0
                for item in self._pending:
                    if taken and size + len(item.version) > SLOT_MAX_BYTES:
                        break
                    taken, size = taken + 1, size + len(item.version)
                batch, self._pending = self._pending[:taken], self._pending[taken:]
            try:
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - the writer outlives any slot
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)

    def _write(self, batch: list[_Pending]) -> None:
        stale = [item for item in batch if item.stream != self.stream]
        for item in stale:
            item.done.set_exception(
                HostLogFenced(f"host log {item.stream} was sealed: the object takes over again")
            )
        batch = [item for item in batch if item.stream == self.stream]
        if not batch:
            return
        slot = self._next
        with self._lock:
            index = dict(self._map) if slot % INDEX_EVERY == 0 else None
        data, places = encode_slot(
            self._stream_bytes, [(i.digest, i.version) for i in batch], index, slot
        )
        key = slot_key(self._settings, self.stream, slot)
        deadline = min(item.deadline for item in batch)
        delay = 0.05
        while True:
            try:
                stored = self._store.create(key, data)
                if not stored and self._store.get(key) != data:
                    self._fenced(
                        batch,
                        f"{key}: another owner took an object of this host's log over and"
                        " sealed the log",
                    )
                    return
                break
            except StoreFailure as exc:
                if time.monotonic() + delay > deadline:
                    self._give_up(batch, exc)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        self.slots += 1
        with self._lock:
            self._next = slot + 1
            for item, place in zip(batch, places, strict=True):
                self._map[item.digest] = place
            if index is not None:
                # A reader starts from this index: every slot it points at must stay.
                self._last_index = slot
                written = [*index.values(), *places]
                self._index_floor = min(p.slot for p in written)
            oldest = keep_from = self._oldest_kept
            if slot % DELETE_BATCH == 0:
                referenced = min((p.slot for p in self._map.values()), default=slot)
                keep_from = min(referenced, self._last_index, self._index_floor)
            delete = keep_from - oldest >= DELETE_BATCH and not self._deleting
            self._deleting = self._deleting or delete
        for item in batch:
            item.done.set_result(None)
        if delete:
            self._deletes.submit(self._delete_before, self.stream, oldest, keep_from)

    def _delete_before(self, stream: str, first: int, slot: int) -> None:
        """Delete the slots of ``stream`` from ``first`` up to ``slot`` (on the deleter)."""
        keys = [slot_key(self._settings, stream, s) for s in range(first, slot)]
        try:
            self._store.delete(keys)
        except StoreFailure as exc:
            log.warning("%s: could not delete old slots: %s", stream, exc)
            slot = first  # tried again at the next batch
        with self._lock:
            if self.stream == stream:  # else the stream was given up meanwhile
                self._oldest_kept = slot
            self._deleting = False

    def _fenced(self, batch: list[_Pending], why: str) -> None:
        log.error("%s; its objects take over again", why)
        with self._lock:  # first: an object dropped now takes over under the new stream
            self._new_stream()
        for item in batch:
            item.done.set_exception(HostLogFenced(why))

    def _give_up(self, batch: list[_Pending], exc: Exception) -> None:
        """The slot's fate is unknown: fail its versions (and what waits behind them) and go
        on in a new stream. The objects of the old one write their own logs until they take
        over again; whoever reads the old stream seals it first, so a slot that lands late
        is either read or refused, never missed."""
        why = (
            f"the replication store did not take the commit in time ({exc});"
            " it was not acknowledged: a retry may be needed"
        )
        with self._lock:
            batch += self._pending
            self._pending = []
            self._new_stream()
        log.warning("a slot of the host log failed (%s); going on in stream %s", exc, self.stream)
        for item in batch:
            item.done.set_exception(StoreFailure(why))
