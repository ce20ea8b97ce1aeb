"""A filesystem bucket's index: one SQLite file saying which body file holds each key.

The index is the bucket's single commit point: a body becomes visible only when its row is
committed, after the body file is durable, and a replaced or deleted body's file is recorded
in ``trash`` in the same transaction, then removed. Every process on the machine (and every
host sharing the folder) opens the same file in WAL mode with a busy timeout; writes take
SQLite's write lock (``BEGIN IMMEDIATE``), so concurrent puts of one key end with one of
them, whole.

Keys are stored as their UTF-8 bytes (``BLOB``), so SQLite's ``memcmp`` order is R2's order
and the next key after a common prefix is a byte increment away.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..owner_only import create_database_file, make_folders
from ._types import BlobMeta, InvalidArgument

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    version TEXT NOT NULL,
    http TEXT NOT NULL,
    custom TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    key BLOB NOT NULL,
    http TEXT NOT NULL,
    custom TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    file TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trash (file TEXT PRIMARY KEY) WITHOUT ROWID;
"""
_COLUMNS = "key, size, etag, uploaded_ms, version, http, custom"


@dataclass(frozen=True, slots=True)
class PartRow:
    part_number: int
    etag: str
    size: int
    file: str


@dataclass(frozen=True, slots=True)
class Upload:
    key: str
    http_metadata: dict[str, str]
    custom_metadata: dict[str, str]
    created_ms: int


def object_file(version: str) -> str:
    """Where a version's body lives, relative to the bucket folder."""
    return f"objects/{version[:2]}/{version}"


def successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def encode_cursor(position: bytes) -> str:
    return base64.urlsafe_b64encode(position).decode().rstrip("=") or "-"


def decode_cursor(cursor: str) -> bytes:
    if cursor == "-":
        return b""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("malformed list cursor") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _milliseconds(when: datetime) -> int:
    """``when`` in whole milliseconds since the epoch, in integers (a float timestamp times
    1,000 can land a millisecond short)."""
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _meta(row: sqlite3.Row | tuple[object, ...], with_metadata: bool = True) -> BlobMeta:
    key, size, etag, uploaded_ms, version, http, custom = row
    assert isinstance(key, bytes) and isinstance(uploaded_ms, int)
    return BlobMeta(
        key=key.decode(),
        size=int(str(size)),
        etag=str(etag),
        uploaded=_EPOCH + timedelta(milliseconds=uploaded_ms),
        version=str(version),
        http_metadata=json.loads(str(http)) if with_metadata else {},
        custom_metadata=json.loads(str(custom)) if with_metadata else {},
    )


class BlobIndex:
    """The index of one bucket folder. Thread-safe: a connection for writes and one for
    reads, each behind its own lock, so reads never wait for this process's writers (nor,
    in WAL mode, for other processes'); the body I/O happens outside."""

    def __init__(self, path: Path, *, full_sync: bool) -> None:
        self._path = path
        self._full_sync = full_sync
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            make_folders(self._path.parent)
            create_database_file(self._path)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {'FULL' if self._full_sync else 'NORMAL'}")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            if self._reader is None:
                with self._lock:
                    self._connect()  # makes the file, WAL mode and the schema first
                reader = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                reader.execute("PRAGMA busy_timeout = 30000")
                reader.execute("PRAGMA query_only = ON")
                self._reader = reader
            yield self._reader

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # Objects.

    def get(self, key: bytes) -> BlobMeta | None:
        with self._read() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM objects WHERE key = ?", (key,)).fetchone()
        return None if row is None else _meta(row)

    def current(self, db: sqlite3.Connection, key: bytes) -> BlobMeta | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM objects WHERE key = ?", (key,)).fetchone()
        return None if row is None else _meta(row)

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, for a check-then-write that must be atomic."""
        with self._write() as db:
            yield db

    def replace(self, db: sqlite3.Connection, key: bytes, meta: BlobMeta) -> None:
        """Make ``meta`` (its body already durable in its version's file) the key's object, and
        put the body it replaces in the trash. Inside :meth:`writing`."""
        old = db.execute("SELECT version FROM objects WHERE key = ?", (key,)).fetchone()
        if old is not None:
            db.execute("INSERT OR IGNORE INTO trash (file) VALUES (?)", (object_file(old[0]),))
        db.execute(
            f"INSERT OR REPLACE INTO objects ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                meta.size,
                meta.etag,
                _milliseconds(meta.uploaded),
                meta.version,
                json.dumps(meta.http_metadata),
                json.dumps(meta.custom_metadata),
            ),
        )

    def delete(self, keys: Sequence[bytes]) -> None:
        with self._write() as db:
            for key in keys:
                old = db.execute("DELETE FROM objects WHERE key = ? RETURNING version", (key,))
                for (version,) in old.fetchall():
                    db.execute(
                        "INSERT OR IGNORE INTO trash (file) VALUES (?)", (object_file(version),)
                    )

    def trash(self) -> builtins.list[str]:
        with self._read() as db:
            return [row[0] for row in db.execute("SELECT file FROM trash LIMIT 1000")]

    def emptied(self, files: Sequence[str]) -> None:
        with self._write() as db:
            db.executemany("DELETE FROM trash WHERE file = ?", [(f,) for f in files])

    def list(
        self,
        prefix: bytes,
        delimiter: bytes | None,
        start: bytes,
        limit: int,
        with_metadata: bool,
    ) -> tuple[builtins.list[BlobMeta], builtins.list[str], bytes | None]:
        """Up to ``limit`` objects and common prefixes from ``start`` on, in key order, and
        where the next page starts (``None`` when this one is the last)."""
        upper = successor(prefix) if prefix else None
        position = max(start, prefix)
        found: list[tuple[bytes, BlobMeta | str]] = []  # (position after it, item)
        while len(found) <= limit:
            query = f"SELECT {_COLUMNS} FROM objects WHERE key >= ?"
            args: list[object] = [position]
            if upper is not None:
                query += " AND key < ?"
                args.append(upper)
            query += " ORDER BY key LIMIT ?"
            args.append(limit + 1 - len(found))
            # One query at a time holds the reader, so gets in the event loop wait for no
            # whole listing. Pages stay consistent: each resumes from a key, not an offset.
            with self._read() as db:
                rows = db.execute(query, args).fetchall()
            if not rows:
                break
            for row in rows:
                key: bytes = row[0]
                cut = key.find(delimiter, len(prefix)) if delimiter else -1
                if cut >= 0 and delimiter is not None:
                    common = key[: cut + len(delimiter)]
                    after = successor(common)
                    assert after is not None  # UTF-8 never holds 0xFF
                    found.append((after, common.decode()))
                    position = after
                    break  # skip every key under the common prefix
                position = key + b"\0"
                found.append((position, _meta(row, with_metadata)))
        page, more = found[:limit], len(found) > limit
        objects = [item for _, item in page if isinstance(item, BlobMeta)]
        prefixes = [item for _, item in page if isinstance(item, str)]
        return objects, prefixes, (page[-1][0] if more and page else None)

    # Multipart uploads.

    def create_upload(self, upload_id: str, upload: Upload) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO uploads (upload_id, key, http, custom, created_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    upload_id,
                    upload.key.encode(),
                    json.dumps(upload.http_metadata),
                    json.dumps(upload.custom_metadata),
                    upload.created_ms,
                ),
            )

    def upload(self, db: sqlite3.Connection | None, upload_id: str) -> Upload | None:
        def find(db: sqlite3.Connection) -> Upload | None:
            row = db.execute(
                "SELECT key, http, custom, created_ms FROM uploads WHERE upload_id = ?",
                (upload_id,),
            ).fetchone()
            if row is None:
                return None
            return Upload(row[0].decode(), json.loads(row[1]), json.loads(row[2]), row[3])

        if db is not None:
            return find(db)
        with self._read() as db:
            return find(db)

    def stale_uploads(self, before_ms: int) -> builtins.list[str]:
        with self._read() as db:
            rows = db.execute(
                "SELECT upload_id FROM uploads WHERE created_ms < ? LIMIT 100", (before_ms,)
            )
            return [row[0] for row in rows]

    def set_part(self, db: sqlite3.Connection, upload_id: str, part: PartRow) -> None:
        """Record a part (inside :meth:`writing`), trashing the file of the one it replaces."""
        old = db.execute(
            "SELECT file FROM parts WHERE upload_id = ? AND part_number = ?",
            (upload_id, part.part_number),
        ).fetchone()
        if old is not None:
            db.execute("INSERT OR IGNORE INTO trash (file) VALUES (?)", (old[0],))
        db.execute(
            "INSERT OR REPLACE INTO parts (upload_id, part_number, etag, size, file)"
            " VALUES (?, ?, ?, ?, ?)",
            (upload_id, part.part_number, part.etag, part.size, part.file),
        )

    def parts(self, db: sqlite3.Connection | None, upload_id: str) -> dict[int, PartRow]:
        def find(db: sqlite3.Connection) -> dict[int, PartRow]:
            rows = db.execute(
                "SELECT part_number, etag, size, file FROM parts WHERE upload_id = ?",
                (upload_id,),
            )
            return {row[0]: PartRow(*row) for row in rows}

        if db is not None:
            return find(db)
        with self._read() as db:
            return find(db)

    def end_upload(self, db: sqlite3.Connection, upload_id: str) -> None:
        """Forget an upload (inside :meth:`writing`); its part files go to the trash."""
        db.execute(
            "INSERT OR IGNORE INTO trash (file) SELECT file FROM parts WHERE upload_id = ?",
            (upload_id,),
        )
        db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
        db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
