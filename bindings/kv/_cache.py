"""The per-process cache of key-value reads: what makes reads fast, and eventually consistent.

Each process (a gateway worker or a host) keeps one :class:`KVCache` per namespace, shared by
every ``env`` it builds. An entry is the answer the owning object gave for a key (a value with
its metadata and expiration, or "no such key"), the version that answer had, and when it was
fetched. A read accepts an entry no older than its ``cache_ttl``.

Entries only ever move forward: an answer older (by version) than the entry already held is
dropped, so a slow read that started before this process's own write cannot bring back the
value that write replaced. The cache holds at most ``budget`` bytes of keys and values; the
least recently used entries go first, and of a value over an eighth of the budget only the
version is kept.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

#: Bookkeeping charged per entry on top of its key and value.
ENTRY_OVERHEAD = 200


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """What the owning object said about one key."""

    version: int
    value: bytes | None
    """None: the key had no live value."""
    metadata: str | None = None
    """JSON text, as stored."""
    expiration: float | None = None
    fetched: float = 0.0
    """``time.monotonic()`` when the answer was read (or written) by this process."""
    known: bool = True
    """False: only the version is kept (the value was too big to cache); reads ask again."""

    def expired(self, now: float) -> bool:
        return self.expiration is not None and self.expiration <= now


class KVCache:
    """Answers by key, least recently used first out, within a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._entries: OrderedDict[bytes, CachedAnswer] = OrderedDict()
        self._bytes = 0
        # Host processes may read from several threads' event loops; keep the dict coherent.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def lookup(self, key: bytes, max_age: float) -> CachedAnswer | None:
        """The entry for ``key`` if it was fetched less than ``max_age`` seconds ago."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not entry.known or time.monotonic() - entry.fetched >= max_age:
                return None
            self._entries.move_to_end(key)
            return entry

    def store(self, key: bytes, answer: CachedAnswer) -> None:
        """Keep ``answer`` unless an entry of a later version is already held. Of a value too
        big to keep, only the version is kept, so that no older answer can take its place."""
        cost = _cost(key, answer)
        if cost * 8 > self.budget:
            answer = CachedAnswer(answer.version, None, fetched=answer.fetched, known=False)
            cost = _cost(key, answer)
        with self._lock:
            held = self._entries.get(key)
            if held is not None:
                if held.version > answer.version:
                    return
                self._forget(key, held)
            self._entries[key] = answer
            self._bytes += cost
            while self._bytes > self.budget:
                old_key, old = next(iter(self._entries.items()))
                self._forget(old_key, old)

    def _forget(self, key: bytes, entry: CachedAnswer) -> None:
        del self._entries[key]
        self._bytes -= _cost(key, entry)


def _cost(key: bytes, answer: CachedAnswer) -> int:
    value = 0 if answer.value is None else len(answer.value)
    metadata = 0 if answer.metadata is None else len(answer.metadata)
    return ENTRY_OVERHEAD + len(key) + value + metadata


_caches: weakref.WeakValueDictionary[tuple[str, ...], KVCache] = weakref.WeakValueDictionary()
_caches_lock = threading.Lock()


def process_cache(identity: tuple[str, ...], budget: int) -> KVCache:
    """This process's cache for the namespace ``identity``; made on first use, kept while any
    binding holds it."""
    with _caches_lock:
        cache = _caches.get(identity)
        if cache is None:
            cache = KVCache(budget)
            _caches[identity] = cache
        return cache
