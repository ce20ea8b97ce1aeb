"""The object that owns a key-value namespace: every pair, its metadata and its expiration.

One :class:`KVStore` per namespace (internal binding ``_KV``, named by the namespace's ``id``
or binding) holds the pairs in its own SQLite file, so writes are durable and ordered the
moment they return. Processes read through :class:`bindings.kv.KVNamespace`, which caches.

Values live in SQL tables rather than the object's key-value API, whose values stop at
``value_bytes`` (2 MiB): a value is split into rows of at most ``row_bytes`` (the first row
inline in ``kv_entries``, the rest in ``kv_chunks``), and arrives or leaves in segments that fit
one RPC message (``stage`` then ``put``, or ``discard`` when the put will not come; ``get`` then
``read``). Each write takes the next number of a per-namespace ``version`` counter; readers use
it to tell a newer answer from an older one, and ``read`` refuses to mix segments of two
versions.

Expired pairs are invisible at once (every read compares with the clock), deleted by the read
that finds them, and swept by the alarm, which is kept at the earliest expiration.
"""

from __future__ import annotations

import time
from typing import Any

from raydo.actors import ObjectContext, PlatformObject
from raydo.storage import StorageCore
from raydo.storage.limits import LimitExceeded, MiB
from raydo.storage.sql import checked_query

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv_entries (
    key BLOB PRIMARY KEY,
    version INTEGER NOT NULL,
    size INTEGER NOT NULL,
    row_bytes INTEGER NOT NULL,
    expiration REAL,
    metadata TEXT,
    head BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_expiring ON kv_entries (expiration)
    WHERE expiration IS NOT NULL;
CREATE TABLE IF NOT EXISTS kv_chunks (
    key BLOB NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (key, seq)
);
CREATE TABLE IF NOT EXISTS kv_staged (
    upload TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created REAL NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (upload, seq)
);
CREATE TABLE IF NOT EXISTS kv_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO kv_state VALUES ('version', 0)
"""

#: Rows of one value are at most this big (and at most half of ``value_bytes``, which bounds
#: any one SQL blob).
MAX_ROW_BYTES = 1 * MiB
#: Segments of an upload that are not finished by then are dropped by the sweep.
STAGED_SECONDS = 3600.0
#: Expired pairs deleted per alarm run; the alarm comes back at once for the rest.
SWEEP_BATCH = 10_000
UPLOAD_CHARS = 64

_GET = "SELECT version, size, row_bytes, expiration, metadata, head FROM kv_entries WHERE key = ?"


class KVStore(PlatformObject):
    """Every pair of one key-value namespace. Its methods are called by ``KVNamespace`` only;
    they check their arguments again, since any object of the app could call them."""

    def __init__(self, ctx: ObjectContext, env: Any, core: StorageCore) -> None:
        super().__init__(ctx, env, core)
        self._sql = ctx.storage.sql
        self._limits = core.limits
        self._row_bytes = max(1, min(MAX_ROW_BYTES, self._limits.value_bytes // 2))
        self._sql.exec(_SCHEMA)
        self._version = int(self._sql.exec("SELECT value FROM kv_state").one()["value"])
        self._get_statement = checked_query(_GET, self._limits)[0]

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, key: bytes, want: int) -> list[Any]:
        """``[version]`` when the key has no live value, else ``[version, size, expiration,
        metadata, first]`` where ``first`` is the value's first ``want`` bytes (all of it when
        it is shorter). ``version`` is the pair's, or the namespace's for a missing key."""
        return self._get(key, want)

    def _get(self, key: bytes, want: int) -> list[Any]:
        # Synchronous: get_each answers many keys without a coroutine each.
        self._check_key(key)
        want = _positive(want, "want")
        row = self._sql.exec(_GET, key).fetchall()
        if not row:
            return [self._version]
        entry = row[0]
        if _expired(entry["expiration"], time.time()):
            self._drop(key)
            return [self._version]
        first = self._slice(key, entry, 0, min(want, entry["size"]))
        return [entry["version"], entry["size"], entry["expiration"], entry["metadata"], first]

    async def get_each(self, keys: list[bytes], want: int) -> list[list[Any] | None]:
        """:meth:`get` of each of ``keys``, in order; None for a key this batch does not
        answer, which the client asks alone: a malformed one (its own call says why), and
        every one after the answers fill half a message.

        Once SQLite has seen the lookup only read, the keys are looked up together
        (:meth:`StorageCore.run_known_reads`); a key whose pair expired, or whose value is
        longer than its first row, is answered by :meth:`get`'s own way."""
        budget = self._limits.message_bytes // 2
        answers: list[list[Any] | None] = [None] * len(keys)
        try:
            want = _positive(want, "want")
            for key in keys:
                self._check_key(key)
        except (ValueError, TypeError):
            return self._get_one_by_one(keys, want)
        found = self.core.run_known_reads(
            self._get_statement, [(key,) for key in keys], [1] * len(keys), budget
        )
        if found is None:
            return self._get_one_by_one(keys, want)
        now = time.time()
        answer: list[Any]
        for i, (rows, _, _, _, _) in enumerate(found[1]):
            if budget <= 0:
                return answers
            if not rows:
                answer = [self._version]
            else:
                version, size, row_bytes, expiration, metadata, head = rows[0]
                if _expired(expiration, now) or min(want, size) > row_bytes:
                    answer = self._get(keys[i], want)  # drops it, or reads its rows
                else:
                    answer = [version, size, expiration, metadata, head[:want]]
            answers[i] = answer
            if len(answer) > 1:
                budget -= len(answer[4]) + len(answer[3] or "") * 4
            budget -= 64
        # Keys after a lookup that failed: each its own way.
        done = len(found[1])
        answers[done:] = self._get_one_by_one(keys[done:], want, budget)
        return answers

    def _get_one_by_one(
        self, keys: list[bytes], want: int, budget: int | None = None
    ) -> list[list[Any] | None]:
        budget = self._limits.message_bytes // 2 if budget is None else budget
        answers: list[list[Any] | None] = []
        for key in keys:
            if budget <= 0:
                answers.append(None)
                continue
            try:
                answer = self._get(key, want)
            except (ValueError, TypeError):
                answers.append(None)
                continue
            if len(answer) > 1:
                budget -= len(answer[4]) + len(answer[3] or "") * 4
            budget -= 64
            answers.append(answer)
        return answers

    async def read(self, key: bytes, version: int, offset: int, length: int) -> bytes | None:
        """``length`` bytes of the value from ``offset``, or None when the key no longer
        holds ``version`` (it was written, deleted or expired since)."""
        self._check_key(key)
        length = _positive(length, "length")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError("offset must be an integer of at least 0")
        rows = self._sql.exec(
            "SELECT version, size, row_bytes, expiration FROM kv_entries WHERE key = ?", key
        ).fetchall()
        if (
            not rows
            or rows[0]["version"] != version
            or _expired(rows[0]["expiration"], time.time())
        ):
            return None
        entry = rows[0]
        offset = min(offset, entry["size"])
        length = min(length, entry["size"] - offset)
        return self._slice(key, entry, offset, length)

    async def list_keys(self, prefix: bytes, after: bytes | None, limit: int) -> list[Any]:
        """``[[[key, expiration, metadata], ...], complete]``: live keys starting with
        ``prefix``, after ``after`` when given, in byte order, at most ``limit``; fewer (and
        not complete) when more would not fit in half an RPC message."""
        if not isinstance(prefix, bytes) or len(prefix) > self._limits.kv_key_bytes:
            raise ValueError("the prefix must be bytes no longer than a key")
        limit = _positive(limit, "limit")
        if after is not None:
            self._check_key(after)
        if after is not None and after >= prefix:
            lower, op = after, ">"
        else:
            lower, op = prefix, ">="
        upper = _successor(prefix)
        query = (
            f"SELECT key, expiration, metadata FROM kv_entries WHERE key {op} ?"
            " AND (expiration IS NULL OR expiration > ?)"
            + (" AND key < ?" if upper is not None else "")
            + " ORDER BY key LIMIT ?"
        )
        params: list[Any] = [lower, time.time()]
        if upper is not None:
            params.append(upper)
        rows = list(self._sql.exec(query, *params, limit + 1).raw())
        budget = self._limits.message_bytes // 2
        page: list[list[Any]] = []
        for key, expiration, metadata in rows[:limit]:
            budget -= len(key) + (len(metadata) if metadata else 0) + 32
            if budget < 0 and page:
                return [page, False]
            page.append([key, expiration, metadata])
        return [page, len(rows) <= limit]

    # ---- writes ----------------------------------------------------------------------------

    async def stage(self, upload: str, data: bytes) -> int:
        """Keep ``data`` as the next segment of ``upload``, for a ``put`` to finish; the
        bytes staged so far. Unfinished uploads are dropped after an hour."""
        if not isinstance(upload, str) or not 0 < len(upload) <= UPLOAD_CHARS:
            raise ValueError("malformed upload id")
        if not isinstance(data, bytes) or not data:
            raise ValueError("a segment is non-empty bytes")
        staged = self._sql.exec(
            "SELECT coalesce(max(seq) + 1, 0) AS n, coalesce(sum(length(data)), 0) AS size"
            " FROM kv_staged WHERE upload = ?",
            upload,
        ).one()
        total = staged["size"] + len(data)
        self._limits.check("kv_value_bytes", total, "the value")
        now = time.time()
        seq = staged["n"]
        for start in range(0, len(data), self._row_bytes):
            self._sql.exec(
                "INSERT INTO kv_staged VALUES (?, ?, ?, ?)",
                upload,
                seq,
                now,
                data[start : start + self._row_bytes],
            )
            seq += 1
        self._arm(now + STAGED_SECONDS)
        return int(total)

    async def discard(self, upload: str) -> None:
        """Drop the segments staged under ``upload`` (a put that will not happen); nothing
        happens when there are none."""
        if not isinstance(upload, str) or not 0 < len(upload) <= UPLOAD_CHARS:
            raise ValueError("malformed upload id")
        self._sql.exec("DELETE FROM kv_staged WHERE upload = ?", upload)

    async def put(
        self,
        key: bytes,
        data: bytes,
        expiration: float | None,
        metadata: str | None,
        upload: str | None = None,
        size: int | None = None,
    ) -> int:
        """Write the pair: ``data`` after the segments staged under ``upload``, if any, whose
        sum must be ``size``. Returns the pair's new version."""
        self._check_key(key)
        if not isinstance(data, bytes):
            raise ValueError("the value must be bytes")
        self._check_metadata(metadata)
        if expiration is not None and not isinstance(expiration, int | float):
            raise ValueError("the expiration must be a number of seconds since the epoch")
        if upload is not None:
            pieces = self._sql.exec(
                "SELECT data FROM kv_staged WHERE upload = ? ORDER BY seq", upload
            ).raw()
            data = b"".join(p[0] for p in pieces) + data
            self._sql.exec("DELETE FROM kv_staged WHERE upload = ?", upload)
        if size is not None and len(data) != size:
            raise ValueError(f"the value arrived with {len(data)} bytes; {size} were sent")
        self._limits.check("kv_value_bytes", len(data), "the value")
        version = self._next_version()
        rows = self._row_bytes
        self._sql.exec("DELETE FROM kv_chunks WHERE key = ?", key)
        self._sql.exec(
            "INSERT OR REPLACE INTO kv_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            key,
            version,
            len(data),
            rows,
            None if expiration is None else float(expiration),
            metadata,
            data[:rows],
        )
        for seq, start in enumerate(range(rows, len(data), rows), start=1):
            self._sql.exec(
                "INSERT INTO kv_chunks VALUES (?, ?, ?)", key, seq, data[start : start + rows]
            )
        if expiration is not None:
            self._arm(float(expiration))
        return version

    async def delete(self, key: bytes) -> int:
        """Delete the pair (nothing happens if there is none); the namespace's new version."""
        self._check_key(key)
        self._drop(key)
        return self._next_version()

    async def alarm(self, info: Any) -> None:
        """Delete expired pairs and abandoned uploads; come back at the next expiration."""
        now = time.time()
        expired = "SELECT key FROM kv_entries WHERE expiration <= ? LIMIT ?"
        self._sql.exec(f"DELETE FROM kv_chunks WHERE key IN ({expired})", now, SWEEP_BATCH)
        self._sql.exec(f"DELETE FROM kv_entries WHERE key IN ({expired})", now, SWEEP_BATCH)
        self._sql.exec("DELETE FROM kv_staged WHERE created <= ?", now - STAGED_SECONDS)
        upcoming = self._sql.exec(
            "SELECT min(expiration) AS e FROM kv_entries WHERE expiration IS NOT NULL"
        ).one()["e"]
        staged = self._sql.exec("SELECT min(created) AS c FROM kv_staged").one()["c"]
        times = [t for t in (upcoming, None if staged is None else staged + STAGED_SECONDS) if t]
        if times:
            self.ctx.storage.set_alarm(_alarm_ms(min(times)))

    # ---- internals -------------------------------------------------------------------------

    def _slice(self, key: bytes, entry: dict[str, Any], offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` of the value, from its rows."""
        rows = entry["row_bytes"]
        end = offset + length
        if end <= rows:
            head: bytes = entry["head"] if "head" in entry else self._head(key)
            return head[offset:end]
        first, last = offset // rows, (end - 1) // rows
        pieces: list[bytes] = []
        if first == 0:
            pieces.append(entry["head"] if "head" in entry else self._head(key))
        pieces += [
            p[0]
            for p in self._sql.exec(
                "SELECT data FROM kv_chunks WHERE key = ? AND seq BETWEEN ? AND ? ORDER BY seq",
                key,
                max(first, 1),
                last,
            ).raw()
        ]
        skip = offset - first * rows
        return b"".join(pieces)[skip : skip + length]

    def _head(self, key: bytes) -> bytes:
        head: bytes = self._sql.exec("SELECT head FROM kv_entries WHERE key = ?", key).one()["head"]
        return head

    def _drop(self, key: bytes) -> None:
        self._sql.exec("DELETE FROM kv_chunks WHERE key = ?", key)
        self._sql.exec("DELETE FROM kv_entries WHERE key = ?", key)

    def _next_version(self) -> int:
        self._version += 1
        self._sql.exec("UPDATE kv_state SET value = ? WHERE name = 'version'", self._version)
        return self._version

    def _arm(self, when: float) -> None:
        """Have the alarm ring no later than ``when`` (epoch seconds)."""
        current = self.ctx.storage.get_alarm()
        wanted = _alarm_ms(when)
        if current is None or wanted < current:
            self.ctx.storage.set_alarm(wanted)

    def _check_key(self, key: object) -> None:
        if not isinstance(key, bytes):
            raise ValueError("a key must be bytes (UTF-8)")
        self._limits.check("kv_key_bytes", len(key), "the key")
        if key in (b"", b".", b".."):
            raise ValueError(f"the key {key!r} is not allowed")

    def _check_metadata(self, metadata: object) -> None:
        if metadata is None:
            return
        if not isinstance(metadata, str):
            raise ValueError("metadata must arrive as JSON text")
        size = len(metadata.encode("utf-8", "surrogatepass"))
        if size > self._limits.kv_metadata_bytes:
            raise LimitExceeded(
                "kv_metadata_bytes",
                f"the metadata is {size} bytes of JSON;"
                f" at most {self._limits.kv_metadata_bytes} are allowed",
            )


def _expired(expiration: float | None, now: float) -> bool:
    return expiration is not None and expiration <= now


def _positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer")
    return value


def _alarm_ms(when: float) -> int:
    # One millisecond late rather than early: at the alarm, the pair must read as expired.
    return int(when * 1000) + 1


def _successor(prefix: bytes) -> bytes | None:
    """The least byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
