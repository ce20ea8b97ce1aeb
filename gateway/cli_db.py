"""``raydo db migrations list|apply BINDING``: a database binding's migrations, from the app's
folder, and the same for code (tests, an app's set-up script).

::

    from raydo.gateway.cli_db import apply_migrations

    apply_migrations("examples/seed-backend", "DB")   # before serving the app

Both work on the database's SQLite file directly (``<storage>/_D1/...``), like
``raydo objects``: with the app stopped, or beside it running (SQLite's locks order the
writers; the database waits while a migration runs).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raydo.bindings.d1 import (
    INTERNAL_BINDING,
    Migration,
    MigrationError,
    MigrationFailed,
    MigrationStatus,
    migration_status,
)
from raydo.bindings.d1 import apply_migrations as apply_to_file

from .config import AppConfig, ConfigError, load_config
from .inspection import object_id, object_path

#: From this many pending migrations on, ``apply`` shows a progress bar (on a terminal).
PROGRESS_FROM = 10


class DatabaseNotFound(LookupError):
    """The app has no ``[[d1_databases]]`` entry with that binding."""


def database_entry(config: AppConfig, binding: str) -> dict[str, Any]:
    """The ``[[d1_databases]]`` entry of ``binding``."""
    for entry in config.d1_databases:
        if entry["binding"] == binding:
            return dict(entry)
    known = ", ".join(str(e["binding"]) for e in config.d1_databases) or "none"
    raise DatabaseNotFound(
        f"{config.path}: no [[d1_databases]] binding {binding!r} (known: {known})"
    )


def database_file(config: AppConfig, binding: str) -> Path:
    """Where the database of ``binding`` keeps its SQLite file (it may not exist yet)."""
    name = str(database_entry(config, binding)["database_name"])
    return object_path(config, object_id(config, INTERNAL_BINDING, name, by_name=True))


def migrations_folder(config: AppConfig, binding: str) -> Path:
    """The ``migrations_dir`` of ``binding``, relative to the app's folder."""
    return config.root / str(database_entry(config, binding)["migrations_dir"])


def list_migrations(app: str | os.PathLike[str] | AppConfig, binding: str) -> list[MigrationStatus]:
    """Every migration of ``binding`` and when it was applied (``None``: pending)."""
    config = app if isinstance(app, AppConfig) else load_config(app)
    return migration_status(database_file(config, binding), migrations_folder(config, binding))


def apply_migrations(
    app: str | os.PathLike[str] | AppConfig,
    binding: str,
    progress: Callable[[Migration], None] | None = None,
) -> list[str]:
    """Apply the pending migrations of ``binding`` (the app given by its folder or config), in
    order, each in one transaction; the names of those applied. Raises
    :class:`~bindings.d1.MigrationError` at the first that fails (those before it
    stay applied)."""
    config = app if isinstance(app, AppConfig) else load_config(app)
    done = apply_to_file(
        database_file(config, binding),
        migrations_folder(config, binding),
        limits=config.limits,
        durability=config.durability,
        progress=progress,
    )
    return [m.name for m in done]


def add_commands(commands: Any) -> None:
    """Add ``raydo db ...`` to the CLI's subcommands."""
    db = commands.add_parser("db", help="the database bindings ([[d1_databases]])")
    db.set_defaults(handler=main)
    topics = db.add_subparsers(dest="topic", required=True, metavar="TOPIC")
    migrations = topics.add_parser("migrations", help="list or apply a database's migrations")
    actions = migrations.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("list", "every migration, applied (when) or pending"),
        ("apply", "apply the pending migrations, in order, each in one transaction"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("binding", help="the database binding, e.g. DB")
        sub.add_argument("--dir", default=".", help="the app's folder (holding raydo.toml)")


def main(args: argparse.Namespace) -> int:
    """Run ``raydo db migrations list|apply``; 0 on success, 1 when a migration failed, 2 for
    a mistake (no such binding, no migrations folder, a misnamed file)."""
    try:
        config = load_config(args.dir)
        if args.action == "list":
            return _list(config, args.binding)
        return _apply(config, args.binding)
    except (ConfigError, DatabaseNotFound, OSError, sqlite3.Error) as exc:
        print(f"raydo: error: {exc}", file=sys.stderr)
        return 2
    except MigrationError as exc:
        print(f"raydo: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, MigrationFailed) else 2


def _list(config: AppConfig, binding: str) -> int:
    statuses = list_migrations(config, binding)
    if not statuses:
        print(f"no migrations in {migrations_folder(config, binding)}")
    for status in statuses:
        when = "pending" if status.applied_at is None else f"applied {status.applied_at}"
        print(f"{status.migration.name}\t{when}")
    return 0


def _apply(config: AppConfig, binding: str) -> int:
    pending = [s.migration for s in list_migrations(config, binding) if s.applied_at is None]
    if not pending:
        print("no pending migrations")
        return 0
    bar: Any = None
    if len(pending) >= PROGRESS_FROM:
        from tqdm import tqdm

        # disable=None: drawn on a terminal only, so logs and pipes stay clean.
        bar = tqdm(total=len(pending), unit=" migrations", file=sys.stderr, disable=None)

    def progress(migration: Migration) -> None:
        if bar is None:
            print(f"applied {migration.name}", flush=True)
        else:
            bar.write(f"applied {migration.name}", file=sys.stdout)
            bar.update(1)

    try:
        apply_migrations(config, binding, progress)
    finally:
        if bar is not None:
            bar.close()
    return 0
