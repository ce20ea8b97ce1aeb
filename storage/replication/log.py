"""One object's log in the store, and the fencing that keeps it to one writer.

::

    <prefix>/<binding>/<id>/log/<seq>    entries 0, 1, 2 ... (16 hex digits: they list in order)
    <prefix>/<binding>/<id>/snap/<seq>   an empty marker: entry <seq> is a snapshot

The log is linear: a writer that last saw entry ``n`` writes ``n + 1``, and only with
``If-None-Match: *``, so of two writers the store lets one have each place. A new owner
starts by creating the next free place as its epoch mark (:meth:`ObjectLog.take_epoch`); from
then on the old owner's next write finds its place taken and raises :class:`Fenced`, so it
acknowledges nothing more. A place found taken by the very bytes we sent is ours (the answer
to an earlier try was lost), never a fence.

Under a host log (:mod:`.journal`) an owner's commits may be acknowledged from its host's
stream before they reach this log. Such an owner's id *is* its stream's, so every entry it
writes names the stream: the next owner seals the stream of the log's last entry and carries
the object's latest version over from it (:meth:`ObjectLog.place`).
"""

from __future__ import annotations

from raydo.storage.errors import StorageError

from .segments import HEAD_BYTES, CorruptEntry, Entry, EntryKind, head_of, now_ms, written_ms_of
from .settings import ReplicationSettings
from .store import ObjectStore

_DIGITS = 16


class Fenced(StorageError):
    """Another owner took this object's log: this one must stop writing and drop the object."""


class ObjectLog:
    """The log of one object, as one owner (``owner``, 16 random bytes) sees and writes it."""

    def __init__(
        self,
        store: ObjectStore,
        settings: ReplicationSettings,
        binding: str,
        object_hex: str,
        owner: bytes,
    ) -> None:
        self.store = store
        self.settings = settings
        self.owner = owner
        self.tail = -1
        """The last entry this owner knows of (its own last one, once it writes)."""
        self.tail_ms = 0
        """When that entry was written (ms), once this owner wrote it or read it."""
        self._stamped = 0
        self._tried: tuple[int, EntryKind, bytes, int, bytes] | None = None
        """The entry of an append that failed: its place, kind, body, time and bytes."""
        self._root = settings.key(binding, object_hex)

    @property
    def root(self) -> str:
        return self._root

    def log_key(self, seq: int) -> str:
        return f"{self._root}/log/{seq:0{_DIGITS}x}"

    def snapshot_key(self, seq: int) -> str:
        return f"{self._root}/snap/{seq:0{_DIGITS}x}"

    def entries_after(self, seq: int | None) -> list[int]:
        """The places of the entries after ``seq`` (all with None), ascending."""
        prefix = f"{self._root}/log/"
        start = None if seq is None or seq < 0 else self.log_key(seq)
        return [_seq(key, prefix) for key in self.store.keys(prefix, start)]

    def entry_head(self, seq: int) -> tuple[EntryKind, bytes, int]:
        """Entry ``seq``'s kind, owner and time (ms), from its head alone (a ranged GET)."""
        key = self.log_key(seq)
        head = self.store.head(key, HEAD_BYTES)
        if head is None:
            raise CorruptEntry(f"{key}: the entry is missing from the store")
        return head_of(head, key)

    def stamp(self) -> int:
        """The time (ms) of this owner's next entry or version: never earlier than the log's
        tail, and after everything this owner stamped before (their order is the log's)."""
        self._stamped = max(now_ms(), self.tail_ms, self._stamped + 1)
        return self._stamped

    def stamp_of_last(self) -> int:
        """The time :meth:`stamp` gave last."""
        return self._stamped

    def seal_version(self, body: bytes) -> bytes:
        """A segment entry's bytes for a host log: written into this log only by
        :meth:`place`, by this owner's successor."""
        return Entry(EntryKind.SEGMENT, self.owner, self.stamp(), body).seal()

    def place(self, data: bytes, written_ms: int) -> bool:
        """Write the sealed entry ``data`` (written at ``written_ms``) after the tail; False
        when that place holds other bytes (the tail moved: read it again)."""
        seq = self.tail + 1
        key = self.log_key(seq)
        if not self.store.create(key, data) and self.store.get(key) != data:
            return False
        self.tail, self.tail_ms = seq, written_ms
        return True

    def snapshots(self) -> list[int]:
        """The places of the snapshot entries whose marker is stored, ascending."""
        prefix = f"{self._root}/snap/"
        return [_seq(key, prefix) for key in self.store.keys(prefix)]

    def read(self, seq: int) -> Entry:
        """Entry ``seq``, checked; :class:`CorruptEntry` if it is missing or damaged."""
        key = self.log_key(seq)
        data = self.store.get(key)
        if data is None:
            raise CorruptEntry(f"{key}: the entry is missing from the store")
        return Entry.unseal(data, key)

    def written_ms(self, seq: int) -> int:
        """When entry ``seq`` was written (ms), from its head alone (one ranged GET)."""
        key = self.log_key(seq)
        head = self.store.head(key, HEAD_BYTES)
        if head is None:
            raise CorruptEntry(f"{key}: the entry is missing from the store")
        return written_ms_of(head, key)

    def written_ms_or_none(self, seq: int) -> int | None:
        """As :meth:`written_ms`, None when there is no entry ``seq``."""
        head = self.store.head(self.log_key(seq), HEAD_BYTES)
        return None if head is None else written_ms_of(head, self.log_key(seq))

    def follow(self) -> int:
        """Take the store's last entry as this owner's tail (one LIST and one ranged GET);
        the tail, -1 for an empty log. An operator's tool writes after it."""
        entries = self.entries_after(None)
        self.tail = entries[-1] if entries else -1
        self.tail_ms = self.written_ms(self.tail) if entries else 0
        return self.tail

    def append(self, kind: EntryKind, body: bytes = b"") -> int:
        """Write the next entry; its place. :class:`Fenced` when another owner has it.

        A call again after one that failed, for the same entry (the same ``body`` object),
        sends the very bytes of the first try: had that try reached the store, its place
        holds them, and is ours."""
        seq = self.tail + 1
        tried = self._tried
        if tried is not None and tried[0] == seq and tried[1] is kind and tried[2] is body:
            written, data = tried[3], tried[4]
        else:
            # Never earlier than the entry before it, so that bookmarks sort as the log does.
            written = self.stamp()
            data = Entry(kind, self.owner, written, body).seal()
        self._tried = (seq, kind, body, written, data)
        key = self.log_key(seq)
        # A place taken by our own bytes is ours: the answer to an earlier try was lost.
        if not self.store.create(key, data) and self.store.get(key) != data:
            raise Fenced(
                f"{key}: another owner wrote this object's log; this host no longer owns it"
            )
        self._tried = None
        self.tail, self.tail_ms = seq, written
        if kind is EntryKind.SNAPSHOT:
            self.store.put(self.snapshot_key(seq), b"")
        return seq

    def take_epoch(self, tail: int) -> int | None:
        """Mark a new ownership after entry ``tail``; its place, or None when the place was
        taken (someone wrote after ``tail``: read the log again, then retry)."""
        self.tail = tail
        try:
            return self.append(EntryKind.EPOCH)
        except Fenced:
            return None

    def delete_before(self, seq: int) -> int:
        """Remove every entry and marker before ``seq``; how many keys went (retention)."""
        keys = [self.log_key(s) for s in self.entries_after(None) if s < seq]
        keys += [self.snapshot_key(s) for s in self.snapshots() if s < seq]
        self.store.delete(keys)
        return len(keys)


def _seq(key: str, prefix: str) -> int:
    return int(key[len(prefix) :], 16)
