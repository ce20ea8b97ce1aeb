"""Point-in-time recovery for operators, against the replication store itself::

    raydo objects restore BINDING NAME|ID --bookmark B | --timestamp T
    raydo d1 time-travel info DB [--timestamp T]
    raydo d1 time-travel restore DB --bookmark B | --timestamp T

A restore appends the object's state at the bookmark to its log as a new snapshot, as the
object's own ``on_next_session_restore_bookmark()`` does, so it can be undone with the
bookmark printed before it. It needs no running app: the next activation of the object, on
any node, restores that state. A host running the object meanwhile serves its old state until
its next write, which the store refuses (the log moved on), so the host drops the object and
the next event restores: so a restore is refused while a runtime holds the app's storage
folder on this machine, unless ``--while-running`` says to go on. ``T`` is a Unix
time in seconds (as wrangler takes it) or an ISO 8601 time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from raydo.storage.folder_lock import live_holder
from raydo.storage.replication import (
    Fenced,
    ObjectLog,
    S3Store,
    carry_over_sealing,
    check_store,
)
from raydo.storage.replication.bookmarks import (
    Bookmark,
    BookmarkUnavailable,
    bookmark_for_time,
    current,
    parse_bookmark,
    rewind,
    time_ms,
)
from raydo.storage.replication.journal import random_owner

from . import inspection
from .config import AppConfig, ConfigError

_TRIES = 5


class AppRunning(ValueError):
    """A runtime serves the app's folder, so a restore now would leave a host serving the
    object's old state until its next write."""


def add_restore_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--bookmark B | --timestamp T`` (one of them when ``required``)."""
    point = parser.add_mutually_exclusive_group(required=required)
    point.add_argument("--bookmark", help="a bookmark (get_current_bookmark(), or info)")
    point.add_argument(
        "--timestamp", help="a Unix time in seconds or an ISO 8601 time: the state then"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--while-running",
        action="store_true",
        help="restore even though a runtime serves the app's folder (see restore's help)",
    )


def parse_timestamp(text: str) -> int:
    """``--timestamp``: Unix seconds or ISO 8601 (naive means UTC), as ms since the epoch."""
    try:
        return time_ms(float(text) * 1000)
    except ValueError:
        pass
    try:
        return time_ms(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(
            f"--timestamp takes Unix seconds or an ISO 8601 time, not {text!r}"
        ) from None


def _log(config: AppConfig, binding: str, object_hex: str, command: str) -> ObjectLog:
    settings = config.replication
    if settings is None:
        raise ConfigError(
            config.path, "replication", f"{command} needs it: without it no history is kept"
        )
    check_store(settings)
    log = ObjectLog(S3Store(settings), settings, binding, object_hex, random_owner())
    if log.follow() < 0:
        raise BookmarkUnavailable(f"{log.root}: the store holds no history of this object")
    return log


def _target(log: ObjectLog, config: AppConfig, args: argparse.Namespace) -> Bookmark:
    assert config.replication is not None
    if args.bookmark is not None:
        return parse_bookmark(args.bookmark)
    return bookmark_for_time(log, config.replication, parse_timestamp(args.timestamp))


def info(config: AppConfig, binding: str, object_hex: str, args: argparse.Namespace) -> Bookmark:
    """The bookmark of the object's stored state now, or at ``--timestamp``."""
    log = _log(config, binding, object_hex, "time-travel info")
    if args.timestamp is None:
        return current(log)
    return _target(log, config, args)


def restore(
    config: AppConfig, binding: str, object_hex: str, args: argparse.Namespace
) -> tuple[Bookmark, Bookmark, Bookmark]:
    """Restore the object to ``--bookmark`` or ``--timestamp``: (the bookmark restored to,
    the restore's own bookmark, the bookmark that undoes it).

    Refused (:class:`AppRunning`) when a runtime holds the app's storage folder, unless
    ``--while-running``: its host would serve the object's old state until its next write."""
    holder = live_holder(config.storage)
    if holder is not None and not getattr(args, "while_running", False):
        raise AppRunning(
            f"the app is running on {config.storage} ({holder.describe()}): a host of it"
            " would serve the object's old state until its next write, which the store"
            " refuses. Stop the app first, or pass --while-running (that host then drops the"
            " object at its next write, and the next event restores)"
        )
    for _ in range(_TRIES):
        log = _log(config, binding, object_hex, "restore")
        assert config.replication is not None
        target = _target(log, config, args)
        # Commits a live host acknowledged from its host log: into the log first (their
        # host's stream sealed, so it acknowledges nothing more), so the undo holds them.
        if carry_over_sealing(log) is not None:
            continue  # the log moved: read it again, from the store
        undo = current(log)
        with tempfile.TemporaryDirectory(prefix="raydo-rewind-") as scratch:
            try:
                done = rewind(log, config.replication, target, Path(scratch))
            except Fenced:  # the object wrote meanwhile: read its log again
                continue
        return target, done, undo
    raise BookmarkUnavailable(f"{binding}/{object_hex}: the log kept moving; try again")


def objects_restore(config: AppConfig, args: argparse.Namespace) -> int:
    """``raydo objects restore``."""
    target = inspection.object_id(config, args.binding, args.object, by_name=args.name)
    restored, done, undo = restore(config, args.binding, target.hex, args)
    _report(args, restored, done, undo, f"{args.binding} {args.object}")
    return 0


def d1(config: AppConfig, binding: str, database_name: str, args: argparse.Namespace) -> int:
    """``raydo d1 time-travel info|restore``: the database ``database_name`` is the object of
    that name in the internal ``binding``."""
    target = inspection.object_id(config, binding, database_name, by_name=True)
    if args.step == "info":
        found = info(config, binding, target.hex, args)
        if args.json:
            print(json.dumps({"bookmark": str(found), "timestamp": _iso(found)}))
        else:
            print(f"The current bookmark is '{found}' ({_iso(found)})")
        return 0
    restored, done, undo = restore(config, binding, target.hex, args)
    _report(args, restored, done, undo, f"database {database_name}")
    return 0


def _report(args: Any, restored: Bookmark, done: Bookmark, undo: Bookmark, what: str) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "restored_to": str(restored),
                    "bookmark": str(done),
                    "previous_bookmark": str(undo),
                }
            )
        )
        return
    print(f"restored {what} to bookmark '{restored}' ({_iso(restored)})")
    print(f"undo with --bookmark {undo}")


def _iso(bookmark: Bookmark) -> str:
    return datetime.fromtimestamp(bookmark.written_ms / 1000, UTC).isoformat(timespec="seconds")


__all__ = ["add_restore_arguments", "d1", "info", "objects_restore", "parse_timestamp", "restore"]
