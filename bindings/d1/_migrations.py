"""Schema migrations of a database: numbered ``.sql`` files, applied in order, each in one
transaction, and recorded in the table ``d1_migrations`` (D1's name and shape).

Migrations run on the database's SQLite file directly, through the same storage (authorizer,
limits, durability) as the database object, so they work with the app stopped or running:
each migration holds SQLite's write lock (``BEGIN IMMEDIATE``) for its transaction, and the
running database waits for it like for any writer. Only statements that end in the file make
a migration: transaction statements are refused, since each migration already is one.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from raydo.storage import LimitExceeded, Limits, SqlStorage, StorageCore, StorageError
from raydo.storage.files import connect_read_only
from raydo.storage.sql import split_statements, strip_comments

#: Where applied migrations are recorded, as in D1 (the app's own SQL can read it).
MIGRATIONS_TABLE = "d1_migrations"
_CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT UNIQUE,"
    " applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)"
)
_FILE_NAME = re.compile(r"(\d+)(?:[_\-.][^/\\]*)?\.sql")
_TRANSACTION_WORDS = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})
_FIRST_WORD = re.compile(r"\s*([A-Za-z]+)")


class MigrationError(Exception):
    """A migration cannot be found, read or applied; ``migration`` names its file when one is
    at fault. Migrations before it stay applied; it and those after it are not."""

    def __init__(self, message: str, migration: str | None = None) -> None:
        super().__init__(message)
        self.migration = migration


class MigrationFailed(MigrationError):
    """SQLite refused a statement of a migration (the message is SQLite's); nothing of that
    migration was applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its number (the order), its file name (the record), its path."""

    number: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        """The file's SQL statements; :class:`MigrationError` if unreadable or if one
        controls transactions."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MigrationError(f"cannot read migration {self.name}: {exc}", self.name) from None
        statements = [s for s in split_statements(text) if strip_comments(s)]
        for i, statement in enumerate(statements, 1):
            word = _FIRST_WORD.match(strip_comments(statement))
            if word is not None and word.group(1).upper() in _TRANSACTION_WORDS:
                raise MigrationError(
                    f"migration {self.name}, statement {i}: {word.group(1).upper()} is not"
                    " allowed: each migration already runs in one transaction",
                    self.name,
                )
        return statements


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """A migration file and when it was applied (``None``: pending)."""

    migration: Migration
    applied_at: str | None


def find_migrations(folder: Path) -> list[Migration]:
    """The ``.sql`` files of ``folder`` in numeric order (``0001_create_users.sql``, ...).

    A ``.sql`` file whose name does not start with a number, or two files with the same
    number, raise :class:`MigrationError`; other files are ignored.
    """
    if not folder.is_dir():
        raise MigrationError(f"no migrations folder {folder}")
    found: dict[int, Migration] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".sql" or not path.is_file():
            continue
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"migration file {path.name} does not start with its number"
                " (name migrations like 0001_create_users.sql)",
                path.name,
            )
        number = int(match.group(1))
        if number in found:
            raise MigrationError(
                f"migrations {found[number].name} and {path.name} have the same number {number}",
                path.name,
            )
        found[number] = Migration(number, path.name, path)
    return [found[n] for n in sorted(found)]


def migration_status(database: Path, folder: Path) -> list[MigrationStatus]:
    """Every migration of ``folder`` with when it was applied to ``database``; reads the file
    without writing (a database that does not exist yet has nothing applied)."""
    migrations = find_migrations(folder)
    applied: dict[str, str] = {}
    if database.exists():
        try:
            conn = connect_read_only(database)
        except sqlite3.Error as exc:
            raise MigrationError(f"cannot open {database}: {exc}") from None
        try:
            applied = dict(conn.execute(f"SELECT name, applied_at FROM {MIGRATIONS_TABLE}"))
        except sqlite3.Error as exc:
            if "no such table" not in str(exc):
                raise MigrationError(f"cannot read {database}: {exc}") from None
        finally:
            conn.close()
    return [MigrationStatus(m, applied.get(m.name)) for m in migrations]


def apply_migrations(
    database: Path,
    folder: Path,
    *,
    limits: Limits,
    durability: str = "normal",
    progress: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply the migrations of ``folder`` not yet recorded in ``database``, in order.

    Each migration runs in its own transaction with its record in ``d1_migrations``: it is
    applied and recorded whole, or not at all. The first that fails raises
    :class:`MigrationFailed` with SQLite's message; those before it stay applied. A missing
    folder, a misnamed file or a transaction statement raise :class:`MigrationError` before
    anything is applied. ``progress`` is called after each migration applied. Returns the
    migrations applied.
    """
    migrations = find_migrations(folder)
    scripts = {m.name: m.statements() for m in migrations}  # every file checked up front
    storage = StorageCore(database, durability=durability, limits=limits)
    done: list[Migration] = []
    try:
        for migration in migrations:
            if _apply_one(storage, migration, scripts[migration.name]):
                done.append(migration)
                if progress is not None:
                    progress(migration)
    finally:
        storage.close()
    return done


def _apply_one(storage: StorageCore, migration: Migration, statements: list[str]) -> bool:
    """Apply one migration in one transaction unless it is recorded; True when applied."""
    # The write lock up front: a deferred transaction that read first could fail on
    # upgrading to a writer if the running database wrote in between.
    where = "taking the write lock"
    try:
        storage.internal(f"{storage.tag}BEGIN IMMEDIATE")
        sql = SqlStorage(storage)
        where = "recording it"
        sql.exec(_CREATE_TABLE)
        recorded = sql.exec(
            f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = ?", migration.name
        ).fetchall()
        if recorded:  # applied already (perhaps by another `apply` meanwhile)
            storage.rollback()
            return False
        for i, statement in enumerate(statements, 1):
            where = f"statement {i}"
            sql.exec(statement)
        where = "recording it"
        sql.exec(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (?)", migration.name)
        storage.commit()
    except (StorageError, LimitExceeded) as exc:
        storage.rollback()
        raise MigrationFailed(
            f"migration {migration.name} failed at {where}, nothing of it was applied: {exc}",
            migration.name,
        ) from None
    except BaseException:
        storage.rollback()
        raise
    return True
