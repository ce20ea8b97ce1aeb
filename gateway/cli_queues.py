"""``raydo queues list|show|purge``: a queue's messages, from the app's storage folder.

Each queue is one internal object of the binding ``_QUEUES`` (its file where
:mod:`storage.layout` puts every object's, the id made from the queue's name); these
functions open that file themselves, like ``raydo objects``. Reading needs no running app
and does not disturb one (SQLite's WAL lets readers in beside the host). ``purge`` writes:
it takes the file's write lock (``BEGIN IMMEDIATE``, waiting while the host finishes an
event), deletes every message and commits, so it runs safely beside a live host too, which
waits for it in turn. Nothing about the messages is kept in the host's memory: a batch in
flight whose messages were purged settles into nothing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from raydo.bindings.queues import OBJECTS
from raydo.storage import codec
from raydo.storage.files import connect_read_only
from raydo.storage.layout import KV_TABLE

from .config import AppConfig, load_config
from .inspection import object_id, object_path

PREVIEW_CHARS = 80


class QueueNotFound(LookupError):
    """The app's config names no such queue."""


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """A queue's messages now, by state, and what became of those that left it."""

    queue: str
    ready: int = 0
    delayed: int = 0
    in_flight: int = 0
    acked: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    oldest_age_s: float | None = None


def queue_names(config: AppConfig) -> list[str]:
    """Every queue the config names: produced to, consumed, or a dead-letter queue."""
    names = {str(p["queue"]) for p in config.queue_producers}
    for consumer in config.queue_consumers:
        names.add(str(consumer["queue"]))
        if consumer.get("dead_letter_queue"):
            names.add(str(consumer["dead_letter_queue"]))
    return sorted(names)


def queue_file(config: AppConfig, queue: str) -> Path:
    """Where the queue's object keeps its SQLite file (it may not exist yet)."""
    known = queue_names(config)
    if queue not in known:
        raise QueueNotFound(
            f"{config.path}: no queue {queue!r} (queues: {', '.join(known) or 'none'})"
        )
    return object_path(config, object_id(config, OBJECTS, queue, by_name=True))


def _has_messages_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue_messages'"
    ).fetchone()
    return row is not None


def queue_counts(config: AppConfig, queue: str) -> QueueCounts:
    """How many messages are ready, delayed and in flight, and the queue's counters."""
    path = queue_file(config, queue)
    if not path.exists():
        return QueueCounts(queue)
    now = int(time.time() * 1000)
    conn = connect_read_only(path)
    try:
        counters: dict[str, int] = {}
        kv = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (KV_TABLE,)
        ).fetchone()
        if kv is not None:
            for key, value in conn.execute(f"SELECT key, value FROM {KV_TABLE}"):
                counters[key] = int(codec.decode(value))
        state = (0, 0, 0, None)
        if _has_messages_table(conn):
            state = conn.execute(
                "SELECT coalesce(sum(lease IS NULL AND visible_ms <= ?), 0),"
                " coalesce(sum(lease IS NULL AND visible_ms > ?), 0),"
                " coalesce(sum(lease IS NOT NULL), 0), min(enqueued_ms) FROM queue_messages",
                (now, now),
            ).fetchone()
    finally:
        conn.close()
    ready, delayed, in_flight, oldest = state
    return QueueCounts(
        queue,
        ready=int(ready),
        delayed=int(delayed),
        in_flight=int(in_flight),
        acked=counters.get("acked", 0),
        retried=counters.get("retried", 0),
        dead_lettered=counters.get("dead_lettered", 0),
        dropped=counters.get("dropped", 0),
        oldest_age_s=None if oldest is None else max(0.0, (now - int(oldest)) / 1000),
    )


def peek(config: AppConfig, queue: str, limit: int = 10) -> list[dict[str, Any]]:
    """The next ``limit`` messages in delivery order: id, state, attempts, times, body."""
    path = queue_file(config, queue)
    if not path.exists():
        return []
    now = int(time.time() * 1000)
    conn = connect_read_only(path)
    try:
        if not _has_messages_table(conn):
            return []
        rows = conn.execute(
            "SELECT id, body, enqueued_ms, visible_ms, attempts, lease FROM queue_messages"
            " ORDER BY visible_ms, seq LIMIT ?",
            (limit,),
        ).fetchall()
    finally:
        conn.close()
    found = []
    for message_id, body, enqueued_ms, visible_ms, attempts, lease in rows:
        state = "in flight" if lease else ("ready" if visible_ms <= now else "delayed")
        found.append(
            {
                "id": message_id,
                "state": state,
                "attempts": attempts,
                "sent": _iso(enqueued_ms),
                "visible": _iso(visible_ms),
                "bytes": len(body),
                "body": _preview(body),
            }
        )
    return found


def purge(config: AppConfig, queue: str) -> int:
    """Delete every message of the queue (in flight ones included); how many there were."""
    path = queue_file(config, queue)
    if not path.exists():
        return 0
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")  # the write lock: the host's events wait meanwhile
        if not _has_messages_table(conn):
            conn.execute("ROLLBACK")
            return 0
        deleted = conn.execute("DELETE FROM queue_messages").rowcount
        conn.execute("COMMIT")
    finally:
        conn.close()
    return int(deleted)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _preview(body: bytes) -> str:
    try:
        text = json.dumps(codec.decode(body), default=str)
    except (codec.DecodeError, ValueError, TypeError):
        text = f"<{len(body)} undecodable bytes>"
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "..."


# ---- the command line ---------------------------------------------------------------------


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError("--limit takes 0 to 1000")
    return value


def add_commands(commands: Any) -> None:
    """Add ``raydo queues ...`` to the top-level subparsers."""
    queues = commands.add_parser("queues", help="see and purge queues (from the storage folder)")
    queues.set_defaults(handler=run)
    actions = queues.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every queue with its message counts")
    show = actions.add_parser("show", help="one queue's counts and its next messages")
    show.add_argument("queue", help="the queue's name")
    show.add_argument("--limit", type=_limit, default=10, help="messages to show (10)")
    purge_cmd = actions.add_parser("purge", help="delete every message of a queue")
    purge_cmd.add_argument("queue", help="the queue's name")
    purge_cmd.add_argument("--yes", action="store_true", help="really delete (required)")
    for sub in (listing, show, purge_cmd):
        sub.add_argument("--dir", default=".", help="the app's folder (holding raydo.toml)")
    for sub in (listing, show):
        sub.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.dir)
    try:
        if args.action == "list":
            counts = [queue_counts(config, name) for name in queue_names(config)]
            if args.json:
                print(json.dumps([asdict(c) for c in counts]))
            else:
                _print_table(counts)
            return 0
        if args.action == "show":
            counts_one = queue_counts(config, args.queue)
            messages = peek(config, args.queue, args.limit)
            if args.json:
                print(json.dumps({**asdict(counts_one), "messages": messages}))
            else:
                _print_show(counts_one, messages)
            return 0
        queue_file(config, args.queue)  # an unknown queue is an error, --yes or not
        if not args.yes:
            waiting = queue_counts(config, args.queue)
            total = waiting.ready + waiting.delayed + waiting.in_flight
            print(
                f"raydo: error: purge deletes all {total} message(s) of {args.queue};"
                " pass --yes to do it",
                file=sys.stderr,
            )
            return 2
        print(f"purged {purge(config, args.queue)} message(s) from {args.queue}")
        return 0
    except (QueueNotFound, sqlite3.Error, OSError) as exc:
        print(f"raydo: error: {exc}", file=sys.stderr)
        return 2


def _print_table(counts: list[QueueCounts]) -> None:
    print("queue\tready\tdelayed\tin_flight\tdead_lettered\tdropped")
    for c in counts:
        print(f"{c.queue}\t{c.ready}\t{c.delayed}\t{c.in_flight}\t{c.dead_lettered}\t{c.dropped}")


def _print_show(counts: QueueCounts, messages: list[dict[str, Any]]) -> None:
    for name, value in asdict(counts).items():
        if name == "oldest_age_s":
            value = "-" if value is None else f"{value:.1f} s"
        print(f"{name}: {value}")
    for m in messages:
        print(f"{m['id']}\t{m['state']}\tattempts={m['attempts']}\tsent={m['sent']}\t{m['body']}")
