"""Alarms: a per-binding index of when objects are due, and a host's timer over it.

An object's alarm lives in its own SQLite file (the truth). The index, one SQLite file per
binding (``<storage>/<BINDING>/_alarms.sqlite``), says which objects of which host are due
when, so a host that starts (or restarts) re-arms every alarm without opening every object.

The index is written ahead of the object: before an event that set an alarm commits, the
index gets the earlier of the old and new times; after the commit, the exact one. A crash in
between leaves an entry that fires early, and firing always checks the object's own alarm
first (never early, at least once). Deleted alarms leave the index after the commit.

Retries: a handler that raises is retried after 2, 4, 8, 16, 32 and 64 s, each with up to
25 % jitter, then dropped. The retry count is kept in memory; a host that restarts tries
again at once (at least once still holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from raydo.storage.owner_only import create_database_file, make_folders

MAX_RETRIES = 6
FIRST_BACKOFF_S = 2.0
JITTER = 0.25


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    """What ``alarm(info)`` is told: which attempt this is, and when the alarm was set for."""

    retry_count: int
    scheduled_time: int
    """Epoch milliseconds."""

    @property
    def is_retry(self) -> bool:
        return self.retry_count > 0


def backoff_s(retry: int) -> float:
    """Seconds before retry number ``retry`` (1-based): 2, 4, 8 ... with up to 25 % jitter."""
    return float(FIRST_BACKOFF_S * (2 ** (retry - 1)) * (1 + random.random() * JITTER))


def now_ms() -> int:
    return int(time.time() * 1000)


class AlarmIndex:
    """The binding's index of due alarms, shared by all its hosts (SQLite serialises them).

    Several host processes open the index at once, the first time as often as not. The file is
    therefore born complete: schema and WAL mode are set in a private file that is then linked
    into place, so no opener ever changes the journal mode of a shared file. (Switching to WAL
    upgrades a read lock to a write lock, and SQLite answers that "database is locked" at once,
    without waiting for the busy timeout, whenever another process does the same.)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.path.exists():
                _create_index_file(self.path)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA synchronous=FULL")
            self._conn = conn
        return self._conn

    def ahead(self, host: str, object_hex: str, name: str | None, due_ms: int) -> None:
        """Before the object commits: make sure the index fires no later than ``due_ms``."""
        self._connection().execute(
            "INSERT INTO alarms (object_hex, host, name, due_ms) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(object_hex) DO UPDATE SET due_ms = min(due_ms, excluded.due_ms),"
            " host = excluded.host, name = coalesce(excluded.name, name)",
            (object_hex, host, name, due_ms),
        )

    def settle(self, host: str, object_hex: str, name: str | None, due_ms: int | None) -> None:
        """After the object committed: record its exact alarm, or that it has none."""
        conn = self._connection()
        if due_ms is None:
            conn.execute("DELETE FROM alarms WHERE object_hex = ?", (object_hex,))
        else:
            conn.execute(
                "INSERT INTO alarms (object_hex, host, name, due_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(object_hex) DO UPDATE SET due_ms = excluded.due_ms,"
                " host = excluded.host, name = coalesce(excluded.name, name)",
                (object_hex, host, name, due_ms),
            )

    def of_host(self, host: str) -> list[tuple[str, str | None, int]]:
        """The alarms of one host, soonest first (read once, when the host starts)."""
        if not self.path.exists():
            return []
        try:
            rows = (
                self._connection()
                .execute(
                    "SELECT object_hex, name, due_ms FROM alarms WHERE host = ? ORDER BY due_ms",
                    (host,),
                )
                .fetchall()
            )
        finally:
            self.close()  # the file stays open only while this host changes alarms
        return [(h, n, int(d)) for h, n, d in rows]

    def hosts(self) -> list[str]:
        """Every host label with an alarm in the index (dedicated hosts included)."""
        if not self.path.exists():
            return []
        rows = self._connection().execute("SELECT DISTINCT host FROM alarms").fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (object_hex TEXT PRIMARY KEY, host TEXT NOT NULL, name TEXT,
    due_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS alarms_by_host ON alarms (host, due_ms);
"""


def _create_index_file(path: Path) -> None:
    """Make the index at ``path`` unless another process has: built under a private name, in
    WAL mode with its schema, then hard-linked into place (a link never replaces a file)."""
    make_folders(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        create_database_file(partial)
        conn = sqlite3.connect(partial, isolation_level=None)
        try:
            conn.executescript(_INDEX_SCHEMA)
            conn.execute("PRAGMA journal_mode=WAL")  # last: page 1 records it in the main file
        finally:
            conn.close()  # the only connection: its WAL is checkpointed and removed
        with contextlib.suppress(FileExistsError):  # another host made it first: same schema
            os.link(partial, path)
    finally:
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)


class AlarmTimer:
    """A host's timer: fires ``fire(object_hex, name, retry_count)`` when an object is due."""

    def __init__(self, fire: Callable[[str, str | None, int], None]) -> None:
        self._fire = fire
        self._heap: list[tuple[int, str]] = []
        self._due: dict[str, tuple[int, str | None, int]] = {}  # hex -> (due_ms, name, retries)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def arm(self, object_hex: str, name: str | None, due_ms: int, retries: int = 0) -> None:
        self._due[object_hex] = (due_ms, name, retries)
        heapq.heappush(self._heap, (due_ms, object_hex))
        if self._heap[0][1] == object_hex:
            self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def disarm(self, object_hex: str) -> None:
        self._due.pop(object_hex, None)  # its heap entries are skipped when they come up

    async def _run(self) -> None:
        while self._due:
            self._wake.clear()
            while self._heap and self._due.get(self._heap[0][1], (None,))[0] != self._heap[0][0]:
                heapq.heappop(self._heap)  # stale: disarmed or re-armed for another time
            if not self._heap:
                return
            due_ms, object_hex = self._heap[0]
            delay = (due_ms - now_ms()) / 1000
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(delay, 60.0))
                continue
            heapq.heappop(self._heap)
            _, name, retries = self._due.pop(object_hex)
            self._fire(object_hex, name, retries)

    async def close(self) -> None:
        """Forget every alarm and wait until the timer's task has ended."""
        self._due.clear()
        self._heap.clear()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
