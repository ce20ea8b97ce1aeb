"""``raydo storage status``: how far the storage folder's objects are from the replication
store, per binding (the user's and the internal ones behind the database, key-value and
queue bindings).

It reads the folder itself (see :mod:`raydo.storage.replication.status`), so it works with or
without a running app and on any node; ``--store`` also asks the store, one LIST per object,
which local files are behind it (another node wrote since). A cluster's live figures are the
hosts' ``raydo_replication_*`` metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from raydo.storage.replication import S3Store, StoreFailure, StoreUnusable, check_store
from raydo.storage.replication.status import objects_status, store_entries_after, summarize

from .config import AppConfig, ConfigError, load_config
from .runtime import runtime_spec


def add_commands(commands: Any) -> None:
    """Add ``raydo storage status`` to the top-level subparsers."""
    storage = commands.add_parser("storage", help="the storage folder against its replication")
    storage.set_defaults(handler=run)
    actions = storage.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="per binding: objects, behind, oldest unshipped")
    status.add_argument("--dir", default=".", help="the app's folder (holding raydo.toml)")
    status.add_argument(
        "--store", action="store_true", help="also ask the store which files are behind it"
    )
    status.add_argument("--json", action="store_true", help="print JSON")


def binding_names(config: AppConfig) -> list[str]:
    """Every binding whose objects have files: the user's and the internal ones."""
    return [binding.name for binding in runtime_spec(config).bindings]


def run(args: argparse.Namespace) -> int:
    config = load_config(args.dir)
    settings = config.replication
    if args.store and settings is None:
        raise ConfigError(config.path, "replication", "raydo storage status --store needs it")
    store = None
    if settings is not None and args.store:
        try:
            check_store(settings)
        except StoreUnusable as exc:
            print(f"raydo: error: {exc}", file=sys.stderr)
            return 1
        store = S3Store(settings)
    rows: list[dict[str, object]] = []
    for binding in binding_names(config):
        statuses = list(objects_status(config.storage, binding))
        row = summarize(binding, statuses).as_json()
        if store is not None and settings is not None:
            try:
                row["behind_store"] = sum(
                    1 for s in statuses if store_entries_after(store, settings, binding, s) > 0
                )
            except StoreFailure as exc:
                print(
                    f"raydo: error: {settings.url}: the store did not answer: {exc}",
                    file=sys.stderr,
                )
                return 1
        rows.append(row)
    if args.json:
        print(
            json.dumps(
                {
                    "storage": str(config.storage),
                    "replication": None if settings is None else settings.url,
                    "mode": None if settings is None else settings.mode,
                    "bindings": rows,
                }
            )
        )
        return 0
    if settings is None:
        print(f"replication is off: the objects' files under {config.storage} are all there is")
    else:
        print(f"replication: {settings.url} ({settings.mode}); storage: {config.storage}")
    _print_table(rows, with_store=store is not None)
    return 0


def _print_table(rows: list[dict[str, object]], *, with_store: bool) -> None:
    head = ["binding", "objects", "replicated", "behind", "unshipped", "unshipped since"]
    if with_store:
        head.append("behind store")
    lines = [head]
    now = time.time()
    for row in rows:
        since = row["unshipped_since"]
        line = [
            str(row["binding"]),
            str(row["objects"]),
            str(row["replicated"]),
            str(row["behind"]),
            _bytes(int(str(row["unshipped_bytes"]))),
            "-" if not isinstance(since, float) else f"{now - since:.0f} s ago",
        ]
        if with_store:
            line.append(str(row["behind_store"]))
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} GiB"


__all__ = ["add_commands", "binding_names", "run"]
