"""``ctx.storage``: the key-value, SQL, transaction and alarm calls an object makes on its own
SQLite file, and nothing else.

Every call runs on the object's :class:`storage.StorageCore` (its connection and its
transaction), which the host holds: the event's first write opens the transaction, the host
commits it before anything the event produced leaves the object, and rolls it back when the
event raised. This face reaches raydo's own tables only through the statements it runs itself.

Key-value pairs live in the table ``_raydo_kv (key TEXT PRIMARY KEY, value BLOB)``, values
msgpack-encoded (:mod:`storage.codec`), so ``sqlite-utils`` and the ``sqlite3`` shell read them.
"""

from __future__ import annotations

import builtins
import contextlib
import math
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from . import codec
from ._core import KV_CREATE, PointInTime, StorageCore
from ._tables import KV_TABLE, TAG
from .errors import StorageError, TransactionError
from .replication import bookmarks
from .sql import SqlStorage

_KV_GET = f"{TAG}SELECT value FROM {KV_TABLE} WHERE key = ?"
_KV_PUT = (
    f"{TAG}INSERT INTO {KV_TABLE} (key, value) VALUES (?, ?)"
    " ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)
_KV_DELETE = f"{TAG}DELETE FROM {KV_TABLE} WHERE key = ?"


class ObjectStorage:
    """``ctx.storage``: synchronous key-value and SQL storage in the object's own SQLite file.

    Calls never yield to the event loop, so nothing else can run inside a storage sequence.
    """

    __slots__ = ("_core", "sql")

    def __init__(self, core: StorageCore) -> None:
        self._core = core
        self.sql = SqlStorage(core)
        """``sql.exec(query, *params)``: SQL on the object's database (see :class:`SqlStorage`)."""

    def commit(self) -> None:
        """Commit the event's writes so far now, and let what it queued for its WebSockets
        leave; the runtime commits at the end of every event anyway. Under a host with
        ``durability = "full"`` the output still waits for the group sync that follows."""
        self._core.commit()

    # ---- key-value ----------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        self._check_key(key)
        row = self._read_one(_KV_GET, (key,))
        return default if row is None else codec.decode(row[0])

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The stored pairs among ``keys``, in key order; missing keys are left out."""
        keys = builtins.list(keys)
        for key in keys:
            self._check_key(key)
        wanted = sorted(set(keys), key=_utf8)
        found: dict[str, Any] = {}
        if not wanted or not self._kv_exists():
            return found
        step = self._core.limits.sql_params
        for i in range(0, len(wanted), step):
            chunk = wanted[i : i + step]
            marks = ",".join("?" * len(chunk))
            rows = self._core.internal(
                f"{TAG}SELECT key, value FROM {KV_TABLE} WHERE key IN ({marks}) ORDER BY key",
                chunk,
            ).fetchall()
            found.update((k, codec.decode(v)) for k, v in rows)
        return found

    def put(self, key: str, value: Any, *, allow_unconfirmed: bool = False) -> None:
        """Store ``value`` under ``key`` (in the event's transaction).

        With ``allow_unconfirmed`` the write does not hold the output gate: a reply or call
        that follows leaves once it is committed, without waiting for it to be durable
        (``durability = "full"``, sync replication); :meth:`sync` waits for that, and should
        it never be durable the object is reset. Cloudflare's ``allowUnconfirmed``."""
        self._check_key(key)
        data = self._encode_value(key, value)
        with self._unconfirmed(allow_unconfirmed):
            self._write(_KV_PUT, (key, data))

    def put_many(self, entries: Mapping[str, Any], *, allow_unconfirmed: bool = False) -> None:
        """Store every pair of ``entries``, all or none. ``allow_unconfirmed``: as for
        :meth:`put`."""
        if not isinstance(entries, Mapping):
            raise TypeError(
                f"put_many takes a mapping of keys to values, got {type(entries).__name__}"
            )
        rows = []
        for key, value in entries.items():
            self._check_key(key)
            rows.append((key, self._encode_value(key, value)))
        if rows:
            with self._unconfirmed(allow_unconfirmed):
                self._ensure_kv()
                self._core.begin()
                self._core.internal_many(_KV_PUT, rows)

    def delete(self, key: str, *, allow_unconfirmed: bool = False) -> bool:
        """Delete ``key``; True when it existed. ``allow_unconfirmed``: as for :meth:`put`."""
        self._check_key(key)
        if not self._kv_exists():
            return False
        with self._unconfirmed(allow_unconfirmed):
            return self._write(_KV_DELETE, (key,)) > 0

    async def sync(self) -> None:
        """Commit the writes so far and wait until everything this object wrote is durable:
        synced to disk under ``durability = "full"``, in the store under sync replication (at
        once otherwise), ``allow_unconfirmed`` writes included. Raises when they never become
        durable. Cloudflare's ``storage.sync()``."""
        durable = self._core.flush()
        if durable is not None:
            await durable

    # ---- point in time (needs [replication]) -------------------------------------------

    async def get_current_bookmark(self) -> str:
        """A bookmark of the object's state now: commits the writes so far and waits for them
        to reach the replication store first. Bookmarks are strings that sort in time order.
        Cloudflare's ``getCurrentBookmark()``."""
        point = self._point_in_time("get_current_bookmark()")
        await self.sync()
        return await point.current_bookmark()

    async def get_bookmark_for_time(self, when: datetime | int | float) -> str:
        """The bookmark of the object's state at ``when`` (a ``datetime``, naive meaning UTC,
        or ms since the epoch): the last state stored at or before it. ``BookmarkUnavailable``
        (a ValueError) when it is older than ``retention_days`` or than the object.
        Cloudflare's ``getBookmarkForTime()``."""
        point = self._point_in_time("get_bookmark_for_time()")
        when_ms = bookmarks.time_ms(when)
        await self.sync()
        return await point.bookmark_for_time(when_ms)

    async def on_next_session_restore_bookmark(self, bookmark: str) -> str:
        """Restore the object's storage to ``bookmark`` when it next starts (call
        ``ctx.abort()`` to restart it now); returns the bookmark that undoes the restore.
        Writes this session makes after the call are dropped. ValueError naming ``bookmark``
        when it is not one; ``BookmarkUnavailable`` when it is past ``retention_days`` or not
        this object's. Cloudflare's ``onNextSessionRestoreBookmark()``."""
        point = self._point_in_time("on_next_session_restore_bookmark()")
        target = bookmarks.parse_bookmark(bookmark)
        await self.sync()
        return await point.restore_on_next_session(target)

    def _point_in_time(self, call: str) -> PointInTime:
        point = self._core.point_in_time
        if point is None:
            raise StorageError(
                f"storage.{call} needs [replication] in raydo.toml: without it an object's"
                " file is the only copy and it keeps no history"
            )
        return point

    def _unconfirmed(self, allow: bool) -> AbstractContextManager[None]:
        if not isinstance(allow, bool):
            raise TypeError(f"allow_unconfirmed is True or False, got {type(allow).__name__}")
        return self._core.unconfirmed() if allow else contextlib.nullcontext()

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete every key of ``keys``; the number that existed."""
        keys = list(keys)
        for key in keys:
            self._check_key(key)
        if not keys or not self._kv_exists():
            return 0
        self._core.begin()
        before = self._core.connection().total_changes
        self._core.internal_many(_KV_DELETE, [(k,) for k in dict.fromkeys(keys)])
        return self._core.connection().total_changes - before

    def list(
        self,
        *,
        prefix: str | None = None,
        start: str | None = None,
        end: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Pairs in key order (UTF-8 byte order), or reversed.

        ``start`` is inclusive, ``end`` exclusive, ``prefix`` narrows the range further;
        ``reverse`` flips the order, not the bounds; ``limit`` (> 0) caps the count.
        """
        for bound in (prefix, start, end):
            if bound is not None:
                self._check_key(bound, allow_empty=True)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0
        ):
            raise ValueError(f"list limit must be a positive int, got {limit!r}")
        low, high = start, end
        if prefix:
            low = prefix if low is None or _utf8(prefix) > _utf8(low) else low
            upper = _prefix_upper_bound(prefix)
            if upper is not None and (high is None or _utf8(upper) < _utf8(high)):
                high = upper
        if not self._kv_exists():
            return {}
        where, params = [], []
        if low is not None:
            where.append("key >= ?")
            params.append(low)
        if high is not None:
            where.append("key < ?")
            params.append(high)
        sql = f"{TAG}SELECT key, value FROM {KV_TABLE}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY key DESC" if reverse else " ORDER BY key"
        if limit is not None:
            sql += f" LIMIT {limit}"
        return {k: codec.decode(v) for k, v in self._core.internal(sql, params).fetchall()}

    def delete_all(self) -> None:
        """Delete every key-value pair and every table, index, view and trigger, atomically."""
        if self._core.in_explicit_transaction:
            raise TransactionError("delete_all() cannot be called inside storage.transaction()")
        if not self._core.path.exists() and not self._core.is_open:
            return
        self._core.begin()
        schema = self._core.internal(
            f"{TAG}SELECT type, name FROM sqlite_master"
            " WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            f" AND name NOT LIKE '\\_raydo\\_%' ESCAPE '\\' AND sql IS NOT NULL"
        ).fetchall()
        order = {"trigger": 0, "view": 1, "index": 2, "table": 3}
        for kind, name in sorted(schema, key=lambda row: order.get(row[0], 9)):
            quoted = '"' + name.replace('"', '""') + '"'
            self._core.internal(f"{TAG}DROP {kind.upper()} IF EXISTS {quoted}")
        if self._kv_exists():
            self._core.internal(f"{TAG}DELETE FROM {KV_TABLE}")
        self.delete_alarm()

    # ---- the alarm ----------------------------------------------------------------------

    def get_alarm(self) -> int | None:
        """When the alarm is set for, in epoch milliseconds, or None (None while ``alarm()``
        runs, until it sets another)."""
        core = self._core
        if core.alarm_running and not core.alarm_replaced:
            return None
        return core.stored_alarm()

    def set_alarm(self, when: datetime | int | float) -> None:
        """Set the object's one alarm (replacing any) for ``when``: a datetime (naive means
        UTC) or epoch milliseconds. A time in the past fires at once. Part of the event's
        transaction, like every write."""
        if not self._core.alarm_handler:
            raise TypeError("set_alarm() needs an alarm() handler on the object's class")
        self._core.write_alarm(alarm_time_ms(when))

    def delete_alarm(self) -> None:
        """Remove the alarm, if one is set (a running ``alarm()`` handler is not stopped)."""
        self._core.write_alarm(None)

    def transaction(self) -> AbstractContextManager[None]:
        """Run the block atomically: an exception rolls back the block's writes and re-raises.

        Nests (each level is a savepoint). Nothing may leave the object inside it: calls to
        other objects raise :class:`TransactionError`.
        """
        return self._core.transaction()

    # ---- internals ----------------------------------------------------------------------

    def _kv_exists(self) -> bool:
        return self._core.table_exists(KV_TABLE)

    def _ensure_kv(self) -> None:
        self._core.ensure_table(KV_TABLE, KV_CREATE)

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        self._ensure_kv()
        self._core.begin()
        return self._core.internal(sql, params).rowcount

    def _read_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not self._kv_exists():
            return None
        row: tuple[Any, ...] | None = self._core.internal(sql, params).fetchone()
        return row

    def _check_key(self, key: object, *, allow_empty: bool = False) -> None:
        if not isinstance(key, str):
            raise TypeError(f"storage keys are str, got {type(key).__name__}")
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("storage keys must be valid Unicode (no lone surrogates)") from None
        self._core.limits.check("key_bytes", size, "the key")

    def _encode_value(self, key: str, value: Any) -> bytes:
        data = codec.encode(value)
        self._core.limits.check("value_bytes", len(data), f"the value for key {key[:60]!r}")
        return data


def alarm_time_ms(when: object) -> int:
    """``when`` (a datetime, naive meaning UTC, or epoch milliseconds) as epoch milliseconds."""
    if isinstance(when, datetime):
        aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        due = aware.timestamp() * 1000
    elif isinstance(when, (int, float)) and not isinstance(when, bool):
        due = float(when)
    else:
        raise TypeError(
            f"set_alarm() takes a datetime or epoch milliseconds, got {type(when).__name__}"
        )
    if not math.isfinite(due) or due <= 0:
        raise ValueError(f"set_alarm() needs a time after the epoch, got {when!r}")
    return int(due)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def _prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (code point order)."""
    chars = list(prefix)
    while chars:
        point = ord(chars[-1]) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            chars[-1] = chr(point)
            return "".join(chars)
        chars.pop()
    return None
