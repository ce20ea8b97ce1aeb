"""The per-process cache of key-value answers: age bound, versions, byte budget."""

from __future__ import annotations

import time

from raydo.bindings.kv._cache import ENTRY_OVERHEAD, CachedAnswer, KVCache, process_cache


def answer(version: int, value: bytes | None, *, age: float = 0.0) -> CachedAnswer:
    return CachedAnswer(version, value, fetched=time.monotonic() - age)


def test_an_entry_serves_reads_that_accept_its_age() -> None:
    cache = KVCache(1 << 20)
    cache.store(b"k", answer(1, b"v", age=5.0))
    assert cache.lookup(b"k", max_age=6.0) is not None
    assert cache.lookup(b"k", max_age=5.0) is None
    assert cache.lookup(b"other", max_age=60.0) is None


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = KVCache(1 << 20)
    cache.store(b"k", answer(5, b"new"))
    cache.store(b"k", answer(4, b"old"))
    found = cache.lookup(b"k", 60.0)
    assert found is not None and found.value == b"new"
    cache.store(b"k", answer(6, None))  # a later delete wins, and is cached as missing
    found = cache.lookup(b"k", 60.0)
    assert found is not None and found.value is None and len(cache) == 1


def test_the_budget_evicts_least_recently_used_and_skips_huge_values() -> None:
    per_entry = ENTRY_OVERHEAD + 1 + 100
    cache = KVCache(per_entry * 10)
    for n in range(10):
        cache.store(bytes([n]), answer(n, b"x" * 100))
    assert cache.lookup(bytes([0]), 60.0) is not None  # now the most recently used
    cache.store(b"\xff", answer(99, b"x" * 100))
    assert len(cache) == 10 and cache.size_bytes <= cache.budget
    assert cache.lookup(bytes([1]), 60.0) is None  # the least recently used went
    assert cache.lookup(bytes([0]), 60.0) is not None
    cache.store(b"huge", answer(100, b"x" * per_entry * 2))  # over an eighth: not kept...
    assert cache.lookup(b"huge", 60.0) is None and cache.size_bytes <= cache.budget
    cache.store(b"huge", answer(99, b"old"))  # ...but its version is: an older answer loses
    assert cache.lookup(b"huge", 60.0) is None
    cache.store(b"huge", answer(101, b"new"))
    found = cache.lookup(b"huge", 60.0)
    assert found is not None and found.value == b"new"


def test_expiration_is_kept_with_the_answer() -> None:
    now = time.time()
    entry = CachedAnswer(1, b"v", expiration=now - 1)
    assert entry.expired(now) and not CachedAnswer(1, b"v").expired(now)


def test_one_cache_per_namespace_per_process() -> None:
    first = process_cache(("app", "/tmp/x", "NS"), 1000)
    assert process_cache(("app", "/tmp/x", "NS"), 1000) is first
    assert process_cache(("app", "/tmp/x", "OTHER"), 1000) is not first
