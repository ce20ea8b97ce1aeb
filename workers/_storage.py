"""``self.ctx.storage`` as the platform spells it, over raydo's synchronous object storage.

The key-value calls are awaitable (``await storage.get("k")``), as on the platform; they
complete at once, since the object's SQLite file is local. ``storage.sql`` and
``storage.kv`` are synchronous, as on the platform. Every write is part of the event's
transaction, committed by raydo's output gate before the reply leaves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from raydo.storage import ObjectStorage

T = TypeVar("T")
_LIST_OPTIONS = frozenset({"prefix", "start", "startAfter", "end", "reverse", "limit"})


class Row(dict[str, Any]):
    """A SQL row: ``row["name"]`` and, as a JavaScript object reads in Pyodide, ``row.name``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"the row has no column {name!r} (columns: {list(self)})"
            ) from None


class SqlCursor:
    """The result of ``sql.exec``: iterate it (rows), ``toArray()``, ``one()``, ``raw()``,
    ``columnNames``, ``rowsRead``, ``rowsWritten``."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._rows = [Row(r) for r in cursor]
        self._next = 0

    def __iter__(self) -> Iterator[Row]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return iter(rows)

    def next(self) -> dict[str, Any]:
        """``{"done": False, "value": row}``, then ``{"done": True}`` (the iterator protocol)."""
        if self._next >= len(self._rows):
            return {"done": True}
        self._next += 1
        return {"done": False, "value": self._rows[self._next - 1]}

    def toArray(self) -> list[Row]:
        return list(self)

    def one(self) -> Row:
        """The only row; an error when there are none or several."""
        return Row(self._cursor.one())

    def raw(self) -> Iterator[list[Any]]:
        return (list(row) for row in self._cursor.raw())

    @property
    def columnNames(self) -> list[str]:
        return list(self._cursor.column_names)

    @property
    def rowsRead(self) -> int:
        return int(self._cursor.rows_read)

    @property
    def rowsWritten(self) -> int:
        return int(self._cursor.rows_written)


class SqlStorage:
    """``storage.sql``: ``exec(query, *bindings)`` on the object's own SQLite database."""

    def __init__(self, storage: ObjectStorage) -> None:
        self._storage = storage

    def exec(self, query: str, *bindings: Any) -> SqlCursor:
        return SqlCursor(self._storage.sql.exec(query, *bindings))


class SyncKv:
    """``storage.kv``: the synchronous key-value API (``get``, ``put``, ``delete``, ``list``)."""

    def __init__(self, storage: ObjectStorage) -> None:
        self._storage = storage

    def get(self, key: str) -> Any:
        return self._storage.get(key)

    def put(self, key: str, value: Any) -> None:
        self._storage.put(key, value)

    def delete(self, key: str) -> bool:
        return self._storage.delete(key)

    def list(self, options: Mapping[str, Any] | None = None, **kwargs: Any) -> Iterator[list[Any]]:
        """``[key, value]`` pairs in key order (``prefix``, ``start``, ``end``, ``reverse``,
        ``limit``, ``startAfter``)."""
        return iter([k, v] for k, v in _list(self._storage, options, kwargs).items())


def _list(storage: ObjectStorage, options: Mapping[str, Any] | None, kwargs: Any) -> dict[str, Any]:
    given = {**(options or {}), **kwargs}
    unknown = sorted(set(given) - _LIST_OPTIONS)
    if unknown:
        raise TypeError(f"list() got unknown options {unknown}; known: {sorted(_LIST_OPTIONS)}")
    after = given.pop("startAfter", None)
    limit = given.pop("limit", None)
    found = storage.list(
        prefix=given.get("prefix"),
        start=given.get("start") if after is None else after,
        end=given.get("end"),
        reverse=bool(given.get("reverse", False)),
        limit=None if limit is None else limit + (1 if after is not None else 0),
    )
    if after is not None:
        found.pop(after, None)
        if limit is not None:
            found = dict(list(found.items())[:limit])
    return found


class _Rollback(Exception):
    """``txn.rollback()``: leave the transaction's block, undoing its writes."""


class Storage:
    """``self.ctx.storage``: ``get``, ``put``, ``delete``, ``list``, ``deleteAll``,
    ``getAlarm``, ``setAlarm``, ``deleteAlarm``, ``transaction``, ``sync`` (awaitable);
    ``sql`` and ``kv`` (synchronous); ``transactionSync``."""

    def __init__(self, storage: ObjectStorage) -> None:
        self._storage = storage
        self.sql = SqlStorage(storage)
        self.kv = SyncKv(storage)

    async def get(self, key: str | Iterable[str]) -> Any:
        """A key's value (None when absent), or for a list of keys a dict of those present."""
        if isinstance(key, str):
            return self._storage.get(key)
        return self._storage.get_many(list(key))

    async def put(
        self,
        key: str | Mapping[str, Any],
        value: Any = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """``put(key, value)``, or ``put({key: value, ...})`` for several (all or nothing);
        ``{"allowUnconfirmed": True}`` as the last argument: the write does not hold the
        output gate (see ``sync``)."""
        if isinstance(key, Mapping):
            # put(entries, options): the second argument is the options.
            if options is None and isinstance(value, Mapping):
                options, value = value, None
            self._storage.put_many(key, allow_unconfirmed=_unconfirmed(options))
        else:
            self._storage.put(key, value, allow_unconfirmed=_unconfirmed(options))

    async def delete(
        self, key: str | Iterable[str], options: Mapping[str, Any] | None = None
    ) -> bool | int:
        """Whether the key existed; for a list of keys, how many did."""
        if isinstance(key, str):
            return self._storage.delete(key, allow_unconfirmed=_unconfirmed(options))
        return self._storage.delete_many(list(key))

    async def list(self, options: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Pairs in key order: ``list({"prefix": "a:", "limit": 10})`` (``start``,
        ``startAfter``, ``end``, ``reverse`` too)."""
        return _list(self._storage, options, kwargs)

    async def deleteAll(self) -> None:
        self._storage.delete_all()

    async def getAlarm(self) -> int | None:
        """When the alarm is set for, in epoch milliseconds, or None."""
        return self._storage.get_alarm()

    async def setAlarm(self, when: datetime | int | float) -> None:
        """Set the alarm for ``when``: epoch milliseconds or a datetime (naive: local time,
        as a JavaScript ``Date`` made from it would be)."""
        if isinstance(when, datetime) and when.tzinfo is None:
            when = when.astimezone(UTC)
        self._storage.set_alarm(when)

    async def deleteAlarm(self) -> None:
        self._storage.delete_alarm()

    async def sync(self) -> None:
        """Commit the event's writes so far and wait until they are durable, the
        ``allowUnconfirmed`` ones included (``ctx.storage.sync()`` of raydo)."""
        await self._storage.sync()

    async def getCurrentBookmark(self) -> str:
        """A bookmark of the object's state now (needs ``[replication]``)."""
        return await self._storage.get_current_bookmark()

    async def getBookmarkForTime(self, timestamp: datetime | int | float) -> str:
        """The bookmark of the state at ``timestamp``: epoch milliseconds or a datetime
        (naive: local time, as a JavaScript ``Date`` made from it would be)."""
        if isinstance(timestamp, datetime) and timestamp.tzinfo is None:
            timestamp = timestamp.astimezone(UTC)
        return await self._storage.get_bookmark_for_time(timestamp)

    async def onNextSessionRestoreBookmark(self, bookmark: str) -> str:
        """Restore to ``bookmark`` when the object next starts (``ctx.abort()`` restarts it
        now); the bookmark that undoes it."""
        return await self._storage.on_next_session_restore_bookmark(bookmark)

    async def transaction(self, closure: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run ``await closure(txn)`` atomically: an exception, or ``txn.rollback()``, undoes
        its writes (rollback returns None)."""
        txn = Transaction(self._storage)
        try:
            with self._storage.transaction():
                return await closure(txn)
        except _Rollback:
            return None  # type: ignore[return-value]

    def transactionSync(self, closure: Callable[[], T]) -> T:
        """Run ``closure()`` atomically (for code using ``sql``); an exception undoes it."""
        with self._storage.transaction():
            return closure()


class Transaction(Storage):
    """The ``txn`` a transaction's closure gets: the storage calls, and ``rollback()``."""

    def rollback(self) -> None:
        raise _Rollback()


def _unconfirmed(options: Mapping[str, Any] | None) -> bool:
    """``{"allowUnconfirmed": True}`` (other options of the platform's put are accepted and
    change nothing: raydo has no in-memory cache to skip)."""
    if options is None:
        return False
    if not isinstance(options, Mapping):
        raise TypeError(f"storage options are a mapping, got {type(options).__name__}")
    allow = options.get("allowUnconfirmed", False)
    if not isinstance(allow, bool):
        raise TypeError("allowUnconfirmed is true or false")
    return allow
