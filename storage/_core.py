"""The transaction core of one object's storage: its connection, its transaction and the
statements raydo runs on its own behalf.

The core is what a host holds; users see it only through the faces built on it
(:class:`storage.ObjectStorage` as ``ctx.storage``, :class:`storage.SqlStorage` as
``ctx.storage.sql``), which reach nothing past the authorizer. Life of a core, in order:

1. It is made closed, with its commit hooks; the file is opened (and made) on the first call.
2. The first write of an event opens an implicit transaction (:meth:`StorageCore.begin`); every
   later write of the event joins it. :meth:`StorageCore.transaction` nests savepoints in it.
3. :meth:`StorageCore.commit` is the one way a transaction ends well: ``before_commit`` runs
   inside the transaction, then COMMIT, then ``after_commit``, whose answer (a future, or None)
   says when what the event produced may leave the object. :meth:`StorageCore.rollback` drops
   what was not committed.
4. :meth:`StorageCore.close` rolls back and closes the file (eviction, shutdown).

If SQLite itself ends the transaction (a full disk, ``INSERT OR ROLLBACK``), every later call
of the event raises :class:`TransactionError` (the lost-transaction guard), so the event cannot
commit its end without its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import codec, layout
from ._authorizer import Authorizer, harden, translate_error
from ._schema_guard import SchemaGuard, schema_refusal
from ._tables import COLUMNS, KV_TABLE, META_TABLE, TAG
from .errors import SqlError, StorageError, StorageFull, TransactionError, disk_error
from .limits import DEFAULT_LIMITS, LimitExceeded, Limits
from .owner_only import make_folders, make_private

if TYPE_CHECKING:
    from .replication.bookmarks import Bookmark

log = logging.getLogger("raydo.storage")

BeforeCommit = Callable[[], None]
"""Runs inside the transaction, just before COMMIT, and only when there is one to commit."""
AfterCommit = Callable[[bool], "asyncio.Future[None] | None"]
"""Runs after every commit (``True`` when it wrote something); its answer is what
:meth:`StorageCore.commit` returns: when the commit's outputs may leave, or None for now."""

#: How many prepared statements a connection keeps (sqlite3's cache, keyed by text).
STATEMENT_CACHE_SIZE = 64
#: How many user statements known to only read a core remembers (least recently used go
#: first). More than the statement cache holds: a statement still in that cache is not
#: prepared again, so it could not be learnt again.
READ_ONLY_STATEMENTS = 4 * STATEMENT_CACHE_SIZE
KV_CREATE = f"{TAG}CREATE TABLE IF NOT EXISTS {KV_TABLE} {COLUMNS[KV_TABLE]}"
_TABLE_EXISTS = f"{TAG}SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
_META_CREATE = f"{TAG}CREATE TABLE IF NOT EXISTS {META_TABLE} {COLUMNS[META_TABLE]}"
_META_GET = f"{TAG}SELECT value FROM {META_TABLE} WHERE key = ?"
_META_SET = f"{TAG}INSERT OR REPLACE INTO {META_TABLE} (key, value) VALUES (?, ?)"
_META_DELETE = f"{TAG}DELETE FROM {META_TABLE} WHERE key = ?"
_ALARM_GET = f"{TAG}SELECT value FROM {META_TABLE} WHERE key = 'alarm'"
_ALARM_SET = f"{TAG}INSERT OR REPLACE INTO {META_TABLE} (key, value) VALUES ('alarm', ?)"
_ALARM_DELETE = f"{TAG}DELETE FROM {META_TABLE} WHERE key = 'alarm'"
_BEGIN = f"{TAG}BEGIN"
_COMMIT = f"{TAG}COMMIT"
_ROLLBACK = f"{TAG}ROLLBACK"

UserResult = tuple[list[str], list[tuple[Any, ...]], int, int]
"""What user SQL gave: column names, rows, rows written, the last inserted rowid."""

KnownRead = tuple[list[tuple[Any, ...]], int, int, float, int]
"""One run of :meth:`StorageCore.run_known_reads`: its rows (cut to its ``max_rows``), how
many rows it read, ``last_row_id``, milliseconds, and about how many bytes the rows take."""


class PointInTime(Protocol):
    """Point-in-time recovery of one object (its replica: storage/replication)."""

    async def current_bookmark(self) -> str: ...

    async def bookmark_for_time(self, when_ms: int) -> str: ...

    async def restore_on_next_session(self, bookmark: Bookmark) -> str: ...


class StorageCore:
    """One object's SQLite file and its transaction (see the module's text).

    ``before_commit`` and ``after_commit`` are the owner's hooks (a host indexes the alarm and
    records the name before, and releases the event's output after); ``in_turn`` counts the
    events running on the storage: a host starts it at 0 so writes outside events are refused,
    standalone use (tools, tests) leaves it at 1.
    """

    __slots__ = (
        "_after_commit",
        "_authorizer",
        "_before_commit",
        "_began",
        "_conn",
        "_guard",
        "_holds_output",
        "_lost",
        "_read_only",
        "_savepoints",
        "_tables",
        "_unconfirmed",
        "alarm_handler",
        "alarm_replaced",
        "alarm_running",
        "alarm_touched",
        "durability",
        "in_turn",
        "limits",
        "on_unconfirmed_lost",
        "path",
        "point_in_time",
        "replicated",
        "sync_later",
    )

    tag = TAG
    """The prefix every internal statement's text starts with."""

    def __init__(
        self,
        path: Path,
        *,
        durability: str = "normal",
        limits: Limits = DEFAULT_LIMITS,
        sync_later: bool = False,
        before_commit: BeforeCommit | None = None,
        after_commit: AfterCommit | None = None,
        alarm_handler: bool = True,
        in_turn: int = 1,
        replicated: bool = False,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', not {durability!r}")
        self.path = path
        self.durability = durability
        # With "full", the owner (a host's group commit) syncs the WAL itself after commits
        # instead of SQLite syncing inside each COMMIT.
        self.sync_later = sync_later and durability == "full"
        self.limits = limits
        self.replicated = replicated
        """Its WAL is shipped (storage/replication): SQLite never checkpoints it by itself,
        so no frame leaves the WAL before it is in the store; :meth:`checkpoint` does."""
        self._before_commit = before_commit
        self._after_commit = after_commit
        self.alarm_handler = alarm_handler
        """False when the object's class has no ``alarm()``: setting one is then refused."""
        self.in_turn = in_turn
        self.alarm_touched = False
        """True when this event set or deleted the alarm (the host re-indexes it on commit)."""
        self.alarm_running = False
        """True while ``alarm()`` runs: the face's ``get_alarm()`` reads None meanwhile."""
        self.alarm_replaced = False
        """True once the running ``alarm()`` set or deleted the alarm itself."""
        self._conn: sqlite3.Connection | None = None
        self._authorizer = Authorizer()
        self._guard = SchemaGuard(STATEMENT_CACHE_SIZE)
        # Which of raydo's tables exist; forgotten whenever a rollback may have undone one.
        self._tables: dict[str, bool] = {}
        self._began = False  # an implicit transaction of ours is open
        self._lost: str | None = None  # why SQLite ended that transaction behind our back
        self._savepoints = 0
        # User statements SQLite prepared with only reads (the authorizer saw them): run
        # outside a transaction, they write nothing, so nothing is begun or committed.
        self._read_only: dict[str, None] = {}
        # Whether the open transaction holds the output gate: any write does, but those made
        # inside unconfirmed() (``put(..., allow_unconfirmed=True)``).
        self._holds_output = False
        self._unconfirmed = 0
        self.point_in_time: PointInTime | None = None
        """The object's log in the replication store, when its owner replicates it: what
        ``ctx.storage``'s bookmarks use."""
        self.on_unconfirmed_lost: Callable[[BaseException], None] | None = None
        """Called when writes that did not hold the output gate never became durable (a
        failed sync or store round): the owner resets the object, as Cloudflare does."""

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    @property
    def in_explicit_transaction(self) -> bool:
        """True inside :meth:`transaction`: the event may not let anything out of the object."""
        return self._savepoints > 0

    @property
    def dirty(self) -> bool:
        """True while writes wait for a commit (a transaction is open)."""
        conn = self._conn
        return conn is not None and conn.in_transaction

    def commit(self, *, whatever_held: bool = False) -> asyncio.Future[None] | None:
        """Commit the writes so far: ``before_commit`` (when there is a transaction), COMMIT,
        then ``after_commit``, whose answer this returns: a future for when the commit's
        outputs may leave, or None when they may leave now. ``whatever_held``: the future
        even when only ``allow_unconfirmed`` writes were made (``storage.sync()``)."""
        self._check_not_lost()
        conn = self._conn
        wrote = False
        if conn is not None and conn.in_transaction:
            if self._savepoints:
                raise TransactionError(
                    "cannot let output leave the object inside storage.transaction():"
                    " finish the transaction first"
                )
            if self._before_commit is not None:
                self._before_commit()
            self.internal(_COMMIT)
            wrote = True
        self._began = False
        holds, self._holds_output = self._holds_output, False
        if self._after_commit is None:
            return None
        durable = self._after_commit(wrote)
        if durable is None or not wrote or holds:
            return durable
        # Only writes made with allow_unconfirmed: what leaves now does not wait for them to
        # be durable (a later commit that holds still waits for a sync covering them).
        durable.add_done_callback(self._unconfirmed_settled)
        return durable if whatever_held else None

    def _unconfirmed_settled(self, durable: asyncio.Future[None]) -> None:
        failure = asyncio.CancelledError() if durable.cancelled() else durable.exception()
        if failure is not None and self.on_unconfirmed_lost is not None:
            self.on_unconfirmed_lost(failure)

    @contextlib.contextmanager
    def unconfirmed(self) -> Iterator[None]:
        """Writes inside this block do not hold the output gate (``allow_unconfirmed``)."""
        self._unconfirmed += 1
        try:
            yield
        finally:
            self._unconfirmed -= 1

    def flush(self) -> asyncio.Future[None] | None:
        """Commit the writes so far and return a future for when everything this object
        committed is durable (in the store too, with sync replication), or None when it is
        already: ``storage.sync()``, whatever each write's ``allow_unconfirmed`` said."""
        return self.commit(whatever_held=True)

    def rollback(self) -> None:
        """Drop every write not yet committed."""
        conn = self._conn
        self._savepoints = 0
        self._began = False
        self._holds_output = False
        self._lost = None
        self.alarm_touched = False
        if conn is not None and conn.in_transaction:
            self._forget_schema()
            self.internal(_ROLLBACK)

    def close(self, closer: Callable[[sqlite3.Connection], object] | None = None) -> None:
        """Roll back what was not committed and close the file.

        ``closer`` closes the connection instead of this call, for instance on another thread:
        closing a WAL database checkpoints it, about a millisecond of I/O.
        """
        conn, self._conn = self._conn, None
        self._began = False
        self._lost = None
        if conn is not None:
            if conn.in_transaction:
                self._conn = conn
                self.internal(_ROLLBACK)
                self._conn = None
            if closer is None:
                conn.close()
            else:
                closer(conn)
        self._savepoints = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A savepoint inside the event's transaction; an exception rolls the block back."""
        self.begin()
        name = f"raydo_sp_{self._savepoints}"
        self.internal(f"{TAG}SAVEPOINT {name}")
        self._savepoints += 1
        try:
            yield
        except BaseException:
            # Never below 0: a rollback meanwhile (the object reset) dropped every savepoint.
            self._savepoints = max(self._savepoints - 1, 0)
            if self.connection().in_transaction:
                self._forget_schema()
                self.internal(f"{TAG}ROLLBACK TO {name}")
                self.internal(f"{TAG}RELEASE {name}")
            raise
        else:
            self._savepoints -= 1
            self.internal(f"{TAG}RELEASE {name}")

    def checkpoint(self) -> bool:
        """Move the WAL into the database file and empty it, now; False when it cannot (no
        open file, a transaction open, or another connection reading)."""
        conn = self._conn
        if conn is None or conn.in_transaction:
            return False
        busy = self.internal(f"{TAG}PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return int(busy) == 0

    @property
    def size_bytes(self) -> int:
        """Bytes the database uses (pages in use times page size)."""
        if self._conn is None and not self.path.exists():
            return 0
        count = self.internal(f"{TAG}PRAGMA page_count").fetchone()[0]
        size = self.internal(f"{TAG}PRAGMA page_size").fetchone()[0]
        return int(count) * int(size)

    # ---- statements -------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            conn = self._open()
        return conn

    def interrupt(self) -> None:
        """Make the statement running on this file fail with SQLite's "interrupted" error
        (``Connection.interrupt()``); callable from any thread (a host's watchdog). A no-op
        when nothing runs or the file is closed."""
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed since it was read
                conn.interrupt()

    def begin(self) -> None:
        """Open the event's transaction unless it is open; refused outside events."""
        self._check_in_turn()
        conn = self.connection()
        if not conn.in_transaction:
            self.internal(_BEGIN)
            self._began = True
        if not self._unconfirmed:
            self._holds_output = True

    def _check_in_turn(self) -> None:
        if self.in_turn <= 0:
            raise TransactionError(
                "storage writes happen inside an event: work that outlives its event (a task,"
                " ctx.wait_until) must call a method of the object through a stub to write"
            )

    def internal(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run one of raydo's own statements (its text starts with :attr:`tag`), trusted."""
        self._check_not_lost()
        auth = self._authorizer
        auth.trusted = True
        try:
            return self.connection().execute(sql, tuple(params))
        except sqlite3.Error as exc:
            self._note_lost_transaction(exc)
            raise self._translate(exc) from None
        finally:
            auth.trusted = False

    def internal_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        auth = self._authorizer
        auth.trusted = True
        self._check_not_lost()
        try:
            self.connection().executemany(sql, rows)
        except sqlite3.Error as exc:
            self._note_lost_transaction(exc)
            raise self._translate(exc) from None
        finally:
            auth.trusted = False

    def run_user_sql(self, statements: Sequence[str], params: tuple[Any, ...]) -> UserResult:
        """Run user statements under the authorizer, in the event's transaction; the
        parameters bind the last one. After each statement that may have changed the schema,
        the schema is checked (:mod:`storage._schema_guard`); one it refuses rolls the
        event's transaction back and raises :class:`SqlError`.

        Statements SQLite prepared before with only reads run without opening a
        transaction when none is open: there is then nothing to commit, and the event's
        commit only waits, as after any read, for the writes before it to be durable."""
        self._check_not_lost()
        conn = self.connection()
        known = self._read_only
        if len(statements) == 1 and not conn.in_transaction and statements[0] in known:
            return self._run_known_read(conn, statements[0], params)
        if conn.in_transaction or not all(s in known for s in statements):
            self.begin()
        else:
            self._check_in_turn()
            for s in statements:
                self._touch_read_only(s)
        auth = self._authorizer
        auth.refusal = None
        guard = self._guard
        if not guard.ready:
            guard.remember(self.internal)
        before = conn.total_changes
        statement = statements[0]
        try:
            for statement in statements[:-1]:
                auth.start_statement()
                conn.execute(statement).fetchall()
                if auth.read_only:
                    self._learn_read_only(statement)
                if guard.may_change(statement, auth.schema_touched):
                    self._check_schema()
            statement = statements[-1]
            auth.start_statement()
            cur = conn.execute(statement, params)
            rows = cur.fetchall()
            if auth.read_only:
                self._learn_read_only(statement)
            if guard.may_change(statement, auth.schema_touched):
                self._check_schema()
        except (sqlite3.Error, OverflowError, UnicodeEncodeError) as exc:
            if isinstance(exc, sqlite3.Error):
                # A schema statement that failed on the data may succeed from the cache later.
                guard.may_change(statement, auth.schema_touched)
            raise self._user_sql_error(exc) from None
        return _column_names(cur), rows, conn.total_changes - before, cur.lastrowid or 0

    def _run_known_read(
        self, conn: sqlite3.Connection, statement: str, params: tuple[Any, ...]
    ) -> UserResult:
        """:meth:`run_user_sql` of one statement SQLite prepared before with only reads, with
        no transaction open: the point reads of the bindings take this way, so it does only
        what such a statement needs (a read changes neither data nor schema)."""
        self._check_in_turn()
        self._touch_read_only(statement)
        auth = self._authorizer
        auth.refusal = None
        auth.start_statement()
        try:
            cur = conn.execute(statement, params)
            rows = cur.fetchall()
        except (sqlite3.Error, OverflowError, UnicodeEncodeError) as exc:
            raise self._user_sql_error(exc) from None
        return _column_names(cur), rows, 0, cur.lastrowid or 0

    def run_known_reads(
        self,
        statement: str,
        params: Sequence[tuple[Any, ...]],
        max_rows: Sequence[int],
        budget: int,
    ) -> tuple[list[str], list[KnownRead]] | None:
        """Run ``statement`` once for each item of ``params`` (checked as
        :func:`storage.sql.checked_params` checks them), when it is one SQLite prepared
        before with only reads and no transaction is open; None when it is not such a read
        now. Each run's rows are cut to its ``max_rows`` (-1: all of them).

        The column names and, in order, each run's :data:`KnownRead`. The list stops before
        the first run that fails, which the caller runs again the usual way
        (:meth:`run_user_sql`) to raise its error, and after the run whose rows take the
        kept rows past ``budget`` bytes (strings and blobs counted by length): however many
        items a caller sends, what is held is bounded.

        For a binding's reads that arrive together: what :meth:`run_user_sql` does around
        one such read is done once for all of them."""
        self._check_not_lost()
        conn = self.connection()
        if conn.in_transaction or statement not in self._read_only:
            return None
        self._check_in_turn()
        self._touch_read_only(statement)
        auth = self._authorizer
        auth.refusal = None
        clock = time.perf_counter
        names: list[str] = []
        answers: list[KnownRead] = []
        for values, keep in zip(params, max_rows, strict=True):
            if budget <= 0:
                break
            auth.start_statement()  # the statement may be prepared again (evicted from cache)
            started = clock()
            try:
                cur = conn.execute(statement, values)
                rows = cur.fetchall()
            except (sqlite3.Error, OverflowError, UnicodeEncodeError):
                break
            ms = (clock() - started) * 1000
            rows_read = len(rows)
            if keep >= 0:
                del rows[keep:]
            size = _rows_bytes(rows)
            budget -= size
            answers.append((rows, rows_read, cur.lastrowid or 0, ms, size))
            if not names:
                names = _column_names(cur)
        return names, answers

    def _user_sql_error(self, exc: sqlite3.Error | OverflowError | UnicodeEncodeError) -> Exception:
        """The error a user statement that raised ``exc`` fails with. After a SQLite error the
        schema is asked again (a rollback may have undone part of it), and a transaction
        SQLite ended by itself is noted as lost."""
        if isinstance(exc, sqlite3.Error):
            self._forget_schema()
            self._note_lost_transaction(exc)
            return translate_error(exc, self._authorizer.refusal, self._limit_hint)
        if isinstance(exc, OverflowError):
            return SqlError(f"a value is outside SQLite's 64-bit integer range: {exc}")
        return SqlError(f"the SQL query or a parameter is not valid Unicode: {exc}")

    def _touch_read_only(self, statement: str) -> None:
        """Move a known read-only ``statement`` to the most recently used end."""
        known = self._read_only
        del known[statement]
        known[statement] = None

    def _learn_read_only(self, statement: str) -> None:
        known = self._read_only
        if statement not in known:
            if len(known) >= READ_ONLY_STATEMENTS:
                del known[next(iter(known))]
            known[statement] = None

    # ---- raydo's tables ---------------------------------------------------------------------

    def table_exists(self, table: str) -> bool:
        if self._conn is None:
            if not self.path.exists():
                return False
            self._open()
        known = self._tables.get(table)
        if known is None:
            known = self._tables[table] = (
                self.internal(_TABLE_EXISTS, (table,)).fetchone() is not None
            )
        return known

    def ensure_table(self, table: str, create: str) -> None:
        if not self.table_exists(table):
            self.begin()
            self.internal(create)
            self._guard.forget()  # raydo's own schema grew: the guard takes it as it is now
            self._tables[table] = True

    def get_meta(self, key: str) -> Any:
        """A value raydo keeps about the object (not in its KV space)."""
        if not self.table_exists(META_TABLE):
            return None
        row = self.internal(_META_GET, (key,)).fetchone()
        return None if row is None else codec.decode(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        if value is None:
            if self.table_exists(META_TABLE):
                self.begin()
                self.internal(_META_DELETE, (key,))
            return
        self.ensure_table(META_TABLE, _META_CREATE)
        self.begin()
        self.internal(_META_SET, (key, codec.encode(value)))

    def stored_alarm(self) -> int | None:
        """The alarm in the file (or this event's transaction), running or not."""
        if not self.table_exists(META_TABLE):
            return None
        row = self.internal(_ALARM_GET).fetchone()
        return None if row is None else int(row[0])

    def write_alarm(self, due_ms: int | None) -> None:
        """Set (or with None delete) the alarm, in the event's transaction."""
        if due_ms is None:
            if not self.table_exists(META_TABLE):
                return
            self.begin()
            self.internal(_ALARM_DELETE)
        else:
            self.ensure_table(META_TABLE, _META_CREATE)
            self.begin()
            self.internal(_ALARM_SET, (due_ms,))
        self.alarm_touched = True
        self.alarm_replaced = True

    # ---- internals --------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        # Errors name no path (they reach callers); the log has it for the operator.
        try:
            make_folders(self.path.parent)
            if not self.path.exists():
                _create_from_template(self.path)
        except OSError as exc:
            log.error("cannot create the object's database %s: %s", self.path, exc)
            raise disk_error(exc, "cannot create the object's database") from None
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=STATEMENT_CACHE_SIZE,
            )
        except sqlite3.Error as exc:
            log.error("cannot open the object's database %s: %s", self.path, exc)
            raise StorageError(f"cannot open the object's database: {exc}") from None
        conn.execute("PRAGMA journal_mode=WAL")
        if self.replicated:
            conn.execute("PRAGMA wal_autocheckpoint=0")
        full_in_commit = self.durability == "full" and not self.sync_later
        conn.execute(f"PRAGMA synchronous={'FULL' if full_in_commit else 'NORMAL'}")
        # On, as in D1 and Durable Objects; it cannot change inside the event's transaction,
        # so user code relaxes it with PRAGMA defer_foreign_keys instead.
        conn.execute("PRAGMA foreign_keys=ON")
        limits = self.limits
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.value_bytes + limits.key_bytes + 1024)
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, max(limits.sql_statement_bytes, 10_000))
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, max(limits.sql_params, 1))
        harden(conn)
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={max(limits.storage_bytes // page_size, 16)}")
        self._forget_schema()
        conn.set_authorizer(self._authorizer)
        self._conn = conn
        return conn

    def _forget_schema(self) -> None:
        # What raydo knows of the schema may be out of date (a rollback may have undone a
        # table it made): ask the file again before relying on it.
        self._tables.clear()
        self._guard.forget()

    def _check_schema(self) -> None:
        reason = self._guard.check(self.internal)
        if reason is None:
            return
        # The change is in the event's transaction, with whatever came before it: all of it
        # goes, and the rest of the event may not commit without it (the lost-transaction
        # guard), as after an error with which SQLite itself ends the transaction.
        self._forget_schema()
        if self.connection().in_transaction:
            self.internal(_ROLLBACK)
        if self._began:
            self._lost = reason
        raise SqlError(schema_refusal(reason), "SQLITE_AUTH")

    def _check_not_lost(self) -> None:
        if self._lost is not None:
            raise TransactionError(
                f"SQLite rolled back this event's transaction after an error ({self._lost});"
                " its earlier writes are gone, so the event cannot go on: let the error propagate"
            )

    def _note_lost_transaction(self, exc: sqlite3.Error) -> None:
        # Some errors (SQLITE_FULL, OR ROLLBACK, RAISE(ROLLBACK)) end the whole transaction.
        # Carrying on would commit the rest of the event without its start: refuse instead.
        conn = self._conn
        if self._began and conn is not None and not conn.in_transaction:
            self._lost = str(exc)

    def _translate(self, exc: sqlite3.Error) -> Exception:
        self._forget_schema()  # the error may have rolled back the transaction that made one
        return translate_error(exc, None, self._limit_hint)

    def _limit_hint(self, message: str) -> Exception | None:
        # SQLite says "database or disk is full" for both: its max_page_count (our limit)
        # and a disk with no room. The disk's free space tells them apart.
        if "database or disk is full" in message:
            if _disk_is_full(self.path.parent):
                log.error("the disk holding %s is full", self.path)
                return StorageFull(
                    "the disk holding the object's storage is full; nothing of this write was"
                    " kept: try later"
                )
            return LimitExceeded(
                "storage_bytes",
                f"the object's database is full at {self.limits.storage_bytes} bytes",
            )
        if "too big" in message:
            return LimitExceeded(
                "value_bytes",
                f"a string, blob or row is larger than {self.limits.value_bytes} bytes",
            )
        return None


_template: Path | None = None


def _create_from_template(path: Path) -> None:
    """Make a new object's file by copying an empty one already in WAL mode with the KV
    table: about half the cost of creating and converting a file (measured ~2.3 -> 1.4 ms)."""
    global _template
    if _template is None or not _template.exists():
        folder = Path(tempfile.mkdtemp(prefix="raydo-template-"))
        made = folder / "object.sqlite"
        conn = sqlite3.connect(made, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(KV_CREATE)
        conn.close()
        _template = made
    partial = layout.partial_object_file(path, os.getpid())
    try:
        shutil.copyfile(_template, partial)
        make_private(partial)  # before it takes its name: its -wal and -shm follow its mode
        os.replace(partial, path)  # atomic: the file is whole or absent
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


#: Free space under which "database or disk is full" means the disk, not the limit. SQLite
#: fails a write when one more page does not fit, so a disk that failed it has next to nothing
#: left (and the pages already written to the WAL stay allocated).
DISK_FULL_BELOW_BYTES = 1024 * 1024


def _disk_is_full(folder: Path) -> bool:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < DISK_FULL_BELOW_BYTES


def remove_partial_files(root: str | Path, binding: str, owned: Callable[[str], bool]) -> int:
    """Delete the half-made object files (:func:`layout.partial_object_files`) of the objects
    of ``binding`` for which ``owned(object_hex)`` is true; how many went. Only the process
    that owns an object makes its file, so an owner starting up may remove what a dead one
    left."""
    removed = 0
    for object_hex, path in layout.partial_object_files(root, binding):
        if owned(object_hex):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
    return removed


def _rows_bytes(rows: list[tuple[Any, ...]]) -> int:
    """About how many bytes ``rows`` take encoded (strings and blobs by length)."""
    size = 16
    for row in rows:
        for value in row:
            if isinstance(value, str):
                size += (len(value) if value.isascii() else 4 * len(value)) + 5
            else:
                size += len(value) + 5 if isinstance(value, bytes) else 9
    return size


def _column_names(cursor: sqlite3.Cursor) -> list[str]:
    description = cursor.description
    return [d[0] for d in description] if description else []
