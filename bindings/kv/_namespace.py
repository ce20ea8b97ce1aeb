"""A key-value namespace as a process sees it (``env.CONFIG``), shaped like Cloudflare KV.

Each namespace is owned by one internal object (:class:`bindings.kv._store.KVStore`, binding
``_KV``): a write is durable there before ``put`` or ``delete`` returns. Reads go through a
per-process cache (:mod:`bindings.kv._cache`), so a process may serve a value up to
``cache_ttl`` seconds old (60 by default) after another process changed it; its own writes it
sees at once. ``list`` always asks the owning object.

Values up to ``kv_value_bytes`` (25 MiB) travel in segments that each fit one RPC message, so
they are not bound by ``message_bytes``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from raydo.actors import Namespace, ObjectId, Stub, in_event
from raydo.storage.limits import Limits, MiB

from .._batching import ReadBatch
from . import _checks
from ._cache import CachedAnswer, KVCache
from ._staging import Upload

LIST_LIMIT = 1000
#: The largest segment of a value in one RPC message, well under ``message_bytes``.
MAX_SEGMENT_BYTES = 4 * MiB
#: A value read in several segments is read again from the start when it changed meanwhile.
READ_ATTEMPTS = 5

ValueType = Literal["text", "json", "bytes", "stream"]
_TYPES = ("text", "json", "bytes", "stream")
PutValue = str | bytes | bytearray | memoryview | AsyncIterable[bytes]


class ValueChanged(RuntimeError):
    """A value read with ``type="stream"`` was rewritten, deleted or expired before the
    stream reached its end (what was yielded so far belongs to the old value); or a value
    read in segments changed during every attempt to read it whole."""


@dataclass(frozen=True, slots=True)
class KVKey:
    """One key of a :class:`KVListResult`."""

    name: str
    expiration: int | float | None = None
    """Seconds since the epoch when the key expires, or None."""
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class KVListResult:
    """A page of keys; ``cursor`` continues the listing when ``list_complete`` is False."""

    keys: list[KVKey]
    list_complete: bool
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class KVValueWithMetadata:
    """``get_with_metadata``'s answer; ``value`` and ``metadata`` are None for a missing key.
    ``cache_status`` is ``"HIT"`` when this process's cache answered, else ``"MISS"``."""

    value: Any
    metadata: Any
    cache_status: str = "MISS"


class KVNamespace:
    """``env.CONFIG``: a key-value namespace.

    Keys are ``str`` of 1 to ``kv_key_bytes`` (512) UTF-8 bytes, other than ``"."`` and
    ``".."``; values ``str`` (stored as UTF-8) or bytes up to ``kv_value_bytes`` (25 MiB);
    metadata any JSON value up to ``kv_metadata_bytes`` (1 KiB) serialized.
    """

    def __init__(
        self,
        namespace: Namespace,
        object_id: ObjectId,
        *,
        limits: Limits,
        cache: KVCache | None,
        cache_ttl: float = 60.0,
        min_ttl: float = 60.0,
    ) -> None:
        self._namespace = namespace
        self._object_id = object_id
        self._limits = limits
        self._cache = cache
        self._cache_ttl = cache_ttl
        self._min_ttl = min_ttl
        self._segment = max(1024, min(MAX_SEGMENT_BYTES, limits.message_bytes - 16 * 1024))
        # Keys fetched together (outside an object's event) travel in one event.
        self._gets: ReadBatch[bytes, Any] = ReadBatch(self._get_each, self._get_one)

    @property
    def object_id(self) -> ObjectId:
        """The id of the object that owns this namespace (in the ``_KV`` binding)."""
        return self._object_id

    @property
    def _stub(self) -> Stub:
        # A new stub per call: a stub that saw its object reset stays broken, a namespace
        # must not.
        return self._namespace.get(self._object_id)

    # ---- reads -----------------------------------------------------------------------------

    async def get(
        self, key: str, type: ValueType = "text", *, cache_ttl: float | None = None
    ) -> Any:
        """The value of ``key`` as ``str`` (``type="text"``), parsed JSON (``"json"``),
        ``bytes`` (``"bytes"``) or an async iterator of ``bytes`` pieces (``"stream"``); None
        when the key does not exist or has expired.

        In order: the key and options are checked; this process's cache answers if it holds
        an answer for the key fetched less than ``cache_ttl`` seconds ago (the namespace's
        ``cache_ttl`` by default; 0 always asks the owning object); otherwise the owning
        object is asked and its answer, a missing key included, is cached.

        A stream of a value longer than one segment (4 MiB) fetches its pieces as it is
        iterated and is not cached; if the value changes meanwhile, the iteration raises
        :class:`ValueChanged`.
        """
        return (await self._read(key, type, cache_ttl))[0]

    async def get_with_metadata(
        self, key: str, type: ValueType = "text", *, cache_ttl: float | None = None
    ) -> KVValueWithMetadata:
        """Like :meth:`get`, with the pair's metadata (None when it has none)."""
        value, metadata, hit = await self._read(key, type, cache_ttl)
        return KVValueWithMetadata(value, metadata, "HIT" if hit else "MISS")

    async def list(
        self, *, prefix: str = "", cursor: str | None = None, limit: int = LIST_LIMIT
    ) -> KVListResult:
        """Live keys starting with ``prefix`` in UTF-8 byte order, at most ``limit`` (1 to
        1000), each with its expiration and metadata. Pass the result's ``cursor`` back to
        continue. Always answered by the owning object, never from the cache."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        prefix_bytes = _checks.utf8(prefix, "the prefix")
        self._limits.check("kv_key_bytes", len(prefix_bytes), "the prefix")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIST_LIMIT:
            raise ValueError(f"limit must be an integer from 1 to {LIST_LIMIT}, got {limit!r}")
        after = None if cursor is None else _checks.decode_cursor(cursor, self._limits)
        rows, complete = await self._stub.list_keys(prefix_bytes, after, limit)
        keys = [
            KVKey(
                name=bytes(name).decode("utf-8"),
                expiration=_seconds_out(expiration),
                metadata=None if metadata is None else json.loads(metadata),
            )
            for name, expiration, metadata in rows
        ]
        next_cursor = None
        if not complete and rows:
            next_cursor = _checks.encode_cursor(bytes(rows[-1][0]))
        return KVListResult(keys, bool(complete), next_cursor)

    # ---- writes ----------------------------------------------------------------------------

    async def put(
        self,
        key: str,
        value: PutValue,
        *,
        expiration: float | None = None,
        expiration_ttl: float | None = None,
        metadata: Any = None,
    ) -> None:
        """Write ``value`` (``str``, bytes-like, or an async iterable of bytes pieces, such
        as ``request.stream()``) under ``key``, replacing any value and metadata it had.

        ``expiration`` (seconds since the epoch) or ``expiration_ttl`` (seconds from now),
        not both, make the pair vanish at that time; either must be at least the namespace's
        ``min_ttl`` (60 s) ahead. ``metadata`` is any JSON value. Everything is checked
        before anything is sent (a streamed value's size as it arrives: the segments staged
        for a value refused or failed midway are discarded before the error is raised, see
        ``_staging``). When this returns the
        write is durable, and this process's cache already holds it (other processes may
        read the old value for up to their ``cache_ttl``).
        """
        key_bytes = _checks.key_bytes(key, self._limits)
        expires = _checks.expiration_time(expiration, expiration_ttl, self._min_ttl, time.time())
        metadata_json = _checks.metadata_json(metadata, self._limits)
        what = f"the value for key {key[:60]!r}"
        started = time.monotonic()
        upload = Upload(lambda: self._stub, self._segment)
        try:
            if isinstance(value, AsyncIterable):
                keep = self._cache.budget // 8 if self._cache is not None else 0
                last, whole = await upload.stage_stream(value, self._limits, what, keep)
            else:
                data = _checks.value_bytes(value)
                self._limits.check("kv_value_bytes", len(data), what)
                last = await upload.stage_bytes(data)
                whole = data
            size = upload.staged + len(last)
            version = await self._stub.put(
                key_bytes,
                last,
                expires,
                metadata_json,
                upload.id if upload.used else None,
                size if upload.used else None,
            )
        except BaseException:
            await upload.discard()
            raise
        self._remember(
            key_bytes,
            CachedAnswer(version, whole, metadata_json, expires, started, known=whole is not None),
        )

    async def delete(self, key: str) -> None:
        """Delete ``key`` (nothing happens when it does not exist). Durable when this returns;
        this process reads the key as missing at once, others within their ``cache_ttl``."""
        key_bytes = _checks.key_bytes(key, self._limits)
        started = time.monotonic()
        version = await self._stub.delete(key_bytes)
        self._remember(key_bytes, CachedAnswer(version, None, fetched=started))

    # ---- internals -------------------------------------------------------------------------

    async def _read(self, key: str, type: str, cache_ttl: float | None) -> tuple[Any, Any, bool]:
        key_bytes = _checks.key_bytes(key, self._limits)
        if type not in _TYPES:
            raise ValueError(f"type must be one of {', '.join(map(repr, _TYPES))}, got {type!r}")
        max_age = (
            self._cache_ttl
            if cache_ttl is None
            else _checks.seconds(cache_ttl, "cache_ttl", self._min_ttl)
        )
        answer = None
        if self._cache is not None and max_age > 0:
            answer = self._cache.lookup(key_bytes, max_age)
        hit = answer is not None
        if answer is None and type == "stream":
            stream, metadata = await self._stream(key_bytes)
            return stream, metadata, False
        if answer is None:
            answer = await self._fetch(key_bytes)
            self._remember(key_bytes, answer)
        if answer.value is None or answer.expired(time.time()):
            return None, None, hit
        metadata = None if answer.metadata is None else json.loads(answer.metadata)
        if type == "stream":
            return _once(answer.value), metadata, hit
        return _checks.typed(answer.value, type, key), metadata, hit

    async def _fetch(self, key: bytes) -> CachedAnswer:
        """The owning object's answer for ``key``, reading a long value segment by segment
        and starting again if it changes in between."""
        for _ in range(READ_ATTEMPTS):
            started = time.monotonic()
            if in_event():
                reply = await self._get_one(key)
            else:
                reply = await self._gets.read(key)
            if len(reply) == 1:
                return CachedAnswer(reply[0], None, fetched=started)
            version, size, expiration, metadata, first = reply
            parts, have = [bytes(first)], len(first)
            while have < size:
                piece = await self._stub.read(key, version, have, min(self._segment, size - have))
                if not piece:
                    break
                parts.append(bytes(piece))
                have += len(piece)
            else:
                return CachedAnswer(version, b"".join(parts), metadata, expiration, started)
        raise ValueChanged(f"the value changed during each of {READ_ATTEMPTS} reads; try again")

    # (Its answers are lists; ``list`` is a method's name in this class.)
    async def _get_one(self, key: bytes) -> Any:
        return await self._stub.get(key, self._segment)

    async def _get_each(self, keys: Sequence[bytes]) -> Any:
        return await self._stub.get_each(list(keys), self._segment)

    async def _stream(self, key: bytes) -> tuple[AsyncIterator[bytes] | None, Any]:
        """The value's first segment now, the others as the stream is iterated."""
        started = time.monotonic()
        reply = await self._stub.get(key, self._segment)
        if len(reply) == 1:
            self._remember(key, CachedAnswer(reply[0], None, fetched=started))
            return None, None
        version, size, expiration, metadata, first = reply
        first = bytes(first)
        parsed = None if metadata is None else json.loads(metadata)
        if len(first) >= size:
            self._remember(key, CachedAnswer(version, first, metadata, expiration, started))
            return _once(first), parsed
        return self._segments(key, version, size, first), parsed

    async def _segments(
        self, key: bytes, version: int, size: int, first: bytes
    ) -> AsyncIterator[bytes]:
        yield first
        have = len(first)
        while have < size:
            piece = await self._stub.read(key, version, have, min(self._segment, size - have))
            if not piece:
                raise ValueChanged(
                    f"the value of {key[:60].decode(errors='replace')!r} changed while it was"
                    " streamed; read it again"
                )
            have += len(piece)
            yield bytes(piece)

    def _remember(self, key: bytes, answer: CachedAnswer) -> None:
        if self._cache is not None:
            self._cache.store(key, answer)


async def _once(value: bytes) -> AsyncIterator[bytes]:
    yield value


def _seconds_out(expiration: float | None) -> int | float | None:
    if expiration is None:
        return None
    return int(expiration) if float(expiration).is_integer() else float(expiration)
