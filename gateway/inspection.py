"""Seeing inside objects, straight from an app's storage folder (``raydo objects ...``).

Every object is one SQLite file (where :mod:`storage.layout` puts it); these functions open
those files themselves, read-only unless asked to write, so they work whether
or not the app is running (SQLite's WAL lets readers in beside a live host). An object is
named by its name or its 64-hex id; the config's namespace key turns a name into the id.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from raydo.actors import ObjectId
from raydo.storage import (
    LimitExceeded,
    SqlError,
    SqlStorage,
    StorageCore,
    StorageError,
    codec,
    layout,
)
from raydo.storage.files import connect_read_only, harden, load_dump, refusal_message
from raydo.storage.layout import KV_TABLE, META_TABLE, RAYDO_TABLES, SOCKETS_TABLE
from raydo.storage.owner_only import create_database_file, make_folders

from .config import AppConfig
from .runtime import runtime_spec


class InspectionError(ValueError):
    """The object or binding asked for does not exist, or the request cannot be done."""


@dataclass(frozen=True, slots=True)
class ObjectSummary:
    id: str
    name: str | None
    size_bytes: int
    last_write: datetime
    alarm: datetime | None
    unreadable: str | None = None
    """Why the file could not be read as an object's database (damaged, not SQLite), if so:
    the listing goes on past it."""


def object_id(config: AppConfig, binding: str, target: str, *, by_name: bool = False) -> ObjectId:
    """``target`` as an id of ``binding``: its 64-hex id, or the id of the name it is."""
    spec = runtime_spec(config)
    try:
        scheme = spec.id_scheme(spec.binding(binding))
    except KeyError:
        known = ", ".join(b.name for b in spec.bindings) or "none"
        raise InspectionError(
            f"no Durable Object binding {binding!r} (bindings: {known})"
        ) from None
    if not by_name:
        try:
            return scheme.from_string(target)
        except ValueError:
            pass
    return scheme.from_name(target)


def object_path(config: AppConfig, object_id: ObjectId) -> Path:
    """The object's SQLite file (it may not exist)."""
    return layout.object_file(config.storage, object_id.namespace, object_id.hex)


def _alarms(config: AppConfig, binding: str) -> dict[str, int]:
    index = layout.alarm_index_file(config.storage, binding)
    if not index.exists():
        return {}
    query = f"SELECT object_hex, due_ms FROM {layout.ALARM_INDEX_TABLE}"
    with _read_only(index) as conn:
        return {h: int(d) for h, d in conn.execute(query)}


def list_objects(
    config: AppConfig,
    binding: str,
    *,
    after: str | None = None,
    limit: int = 100,
    progress: Callable[[int], None] | None = None,
) -> list[ObjectSummary]:
    """Objects of ``binding`` that have storage, by id, ``limit`` at a time after ``after``."""
    object_id(config, binding, "0" * 64, by_name=True)  # checks the binding exists
    hexes = sorted(layout.object_hexes(config.storage, binding))
    paths = [layout.object_file(config.storage, binding, h) for h in hexes]
    alarms = _alarms(config, binding)
    found: list[ObjectSummary] = []
    for seen, path in enumerate(paths, 1):
        if progress is not None and seen % 1000 == 0:
            progress(seen)
        if after is not None and path.stem <= after:
            continue
        stats = [path.stat()]
        name: str | None = None
        unreadable: str | None = None
        try:
            name = _recorded_name(path)
        except (sqlite3.DatabaseError, codec.DecodeError) as e:  # one bad file: say so, go on
            unreadable = str(e) or type(e).__name__
        wal = path.with_name(path.name + "-wal")
        with contextlib.suppress(FileNotFoundError):
            # An empty log is what a reader leaves (our own read of the name, a moment ago,
            # makes one): it says nothing of when the object last wrote.
            if (wal_stat := wal.stat()).st_size > 0:
                stats.append(wal_stat)
        due = alarms.get(path.stem)
        found.append(
            ObjectSummary(
                id=path.stem,
                name=name,
                size_bytes=sum(s.st_size for s in stats),
                last_write=datetime.fromtimestamp(max(s.st_mtime for s in stats), UTC),
                alarm=None if due is None else datetime.fromtimestamp(due / 1000, UTC),
                unreadable=unreadable,
            )
        )
        if len(found) >= limit:
            break
    return found


def _recorded_name(path: Path) -> str | None:
    """The name the object's host recorded in its file, if it knew one."""
    with _read_only(path) as conn:
        try:
            row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'name'").fetchone()
        except sqlite3.OperationalError:  # no meta table: never written with a known name
            return None
    return None if row is None else str(codec.decode(row[0]))


def show_object(config: AppConfig, target: ObjectId) -> dict[str, Any]:
    """An object's tables (with row counts), key-value count, alarm and open sockets."""
    path = _existing(config, target)
    with _read_only(path) as conn:
        names = _table_names(conn)
        tables = {
            n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]
            for n in names
            if n not in RAYDO_TABLES
        }
        kv = (
            conn.execute(f"SELECT count(*) FROM {KV_TABLE}").fetchone()[0]
            if KV_TABLE in names
            else 0
        )
        alarm = None
        if META_TABLE in names:
            row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'alarm'").fetchone()
            alarm = None if row is None else datetime.fromtimestamp(int(row[0]) / 1000, UTC)
        sockets = []
        if SOCKETS_TABLE in names:
            query = f"SELECT sid, gateway, tags FROM {SOCKETS_TABLE}"
            for sid, gateway, tags in conn.execute(query):
                sockets.append({"sid": sid, "gateway": gateway, "tags": codec.decode(tags)})
    return {
        "id": target.hex,
        "name": target.name if target.name is not None else _recorded_name(path),
        "file": str(path),
        "tables": tables,
        "kv_pairs": kv,
        "alarm": None if alarm is None else alarm.isoformat(),
        "sockets": sockets,
    }


def table_rows(
    config: AppConfig, target: ObjectId, table: str, *, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    """One page of a table of the object's (its own tables, not raydo's): ``columns``,
    ``rows`` (values as JSON takes them: bytes as ``{"$bytes": base64}``) and ``total``.
    The table is looked up among the file's tables, never pasted from the caller."""
    path = _existing(config, target)
    with _read_only(path) as conn:
        names = [n for n in _table_names(conn) if n not in RAYDO_TABLES]
        if table not in names:
            raise InspectionError(
                f"object {target.hex} has no table {table!r} (tables: {', '.join(names) or 'none'})"
            )
        quoted = '"' + table.replace('"', '""') + '"'
        total = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
        cursor = conn.execute(f"SELECT * FROM {quoted} LIMIT ? OFFSET ?", (limit, offset))
        columns = [d[0] for d in cursor.description]
        rows = [
            [_jsonable(table, c, v) for c, v in zip(columns, row, strict=True)] for row in cursor
        ]
    return {"table": table, "columns": columns, "rows": rows, "total": total, "offset": offset}


def kv_pairs(
    config: AppConfig, target: ObjectId, *, after: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The object's key-value pairs in key order, ``limit`` after ``after``: each
    ``{"key", "value"}`` with the value decoded (``{"$bytes": ...}`` when it does not)."""
    path = _existing(config, target)
    with _read_only(path) as conn:
        if KV_TABLE not in _table_names(conn):
            return []
        rows = conn.execute(
            f"SELECT key, value FROM {KV_TABLE} WHERE ? IS NULL OR key > ? ORDER BY key LIMIT ?",
            (after, after, limit),
        ).fetchall()
    found = []
    for key, value in rows:
        shown = _jsonable(KV_TABLE, "value", value)
        found.append({"key": key, "value": shown.get("$value", shown)})
    return found


def jsonable(value: Any) -> Any:
    """A SQL result's value as JSON takes it: bytes as ``{"$bytes": base64}``."""
    return _jsonable("", "", value)


def run_sql(
    config: AppConfig,
    target: ObjectId,
    query: str,
    *,
    write: bool = False,
    max_rows: int | None = None,
    seconds: float | None = None,
    read_only_hint: str = " (read-only: pass --write to change it)",
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``query`` on the object's file under the rules of user SQL: read-only (raydo's own
    tables readable) unless ``write``; with ``write``, exactly as the object's own
    ``ctx.storage.sql.exec`` runs it, in one transaction committed at the end. Neither way
    can attach another database or write any other file.

    Read-only, at most ``max_rows`` rows are fetched (all when None) and the statement is
    interrupted after ``seconds`` (an ``InspectionError``); a write attempt's error ends with
    ``read_only_hint``."""
    path = _existing(config, target)
    if write:
        return _run_writing(path, query)
    with _read_only(path) as conn:
        if seconds is not None:
            deadline = time.monotonic() + seconds
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cursor = conn.execute(query)
            rows = cursor.fetchall() if max_rows is None else cursor.fetchmany(max_rows)
        except sqlite3.Error as exc:
            if seconds is not None and time.monotonic() > deadline:
                raise InspectionError(f"the query ran past {seconds:g} s and was stopped") from None
            hint = read_only_hint if "readonly" in str(exc) else ""
            raise InspectionError(f"{refusal_message(conn, exc)}{hint}") from None
        names = [d[0] for d in cursor.description] if cursor.description else []
    return names, rows


def _run_writing(path: Path, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    core = StorageCore(path)
    try:
        cursor = SqlStorage(core).exec(query)
        core.commit()
    except (StorageError, LimitExceeded) as exc:
        core.rollback()
        raise InspectionError(str(exc)) from None
    finally:
        core.close()
    return cursor.column_names, list(cursor.raw())


def export_object(config: AppConfig, target: ObjectId, form: str) -> Iterator[str]:
    """The object's storage as a SQL dump (``sql``) or JSON lines, one row each (``jsonl``)."""
    path = _existing(config, target)
    with _read_only(path) as conn:
        if form == "sql":
            yield from (line + "\n" for line in conn.iterdump())
            return
        tables = _table_names(conn)
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            for row in cursor:
                record = {n: _jsonable(table, n, v) for n, v in zip(names, row, strict=True)}
                yield json.dumps({"table": table, "row": record}) + "\n"


def import_object(config: AppConfig, target: ObjectId, dump: str) -> None:
    """Create the object from a SQL dump made by :func:`export_object` (it must not exist).

    The dump is loaded under raydo's rules (:func:`raydo.storage.files.load_dump`): what an
    export never contains (ATTACH, VACUUM INTO, PRAGMAs that write, triggers, views or indexes
    on raydo's tables, raydo's tables defined otherwise) is refused and leaves no file."""
    path = object_path(config, target)
    if path.exists():
        raise InspectionError(f"object {target.hex} already has storage at {path}; not replaced")
    make_folders(path.parent)
    partial = path.with_name(f".{path.name}.import")
    partial.unlink(missing_ok=True)
    create_database_file(partial)  # 0600 before SQLite opens it: its -wal and -shm follow
    try:
        load_dump(partial, dump)
    except SqlError as exc:
        raise InspectionError(f"the dump does not load: {exc}") from None
    conn = sqlite3.connect(partial)
    try:
        harden(conn)
        _rename(conn, target)
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        conn.close()
        partial.unlink(missing_ok=True)
        raise InspectionError(f"the dump does not load: {exc}") from None
    conn.close()
    partial.replace(path)


def _rename(conn: sqlite3.Connection, target: ObjectId) -> None:
    """The imported object is the target, not the dump's source: the name recorded in the
    dump (if any) is replaced by the target's (or dropped when the target has none)."""
    if META_TABLE not in _table_names(conn):
        return
    conn.execute(f"DELETE FROM {META_TABLE} WHERE key = 'name'")
    if target.name is not None:
        conn.execute(
            f"INSERT INTO {META_TABLE} (key, value) VALUES ('name', ?)",
            (codec.encode(target.name),),
        )
    conn.commit()


def _table_names(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name"
    )
    return [row[0] for row in rows]


def _jsonable(table: str, column: str, value: Any) -> Any:
    if table == KV_TABLE and column == "value" and isinstance(value, bytes):
        try:
            return {"$value": json.loads(json.dumps(codec.decode(value), default=str))}
        except (codec.DecodeError, TypeError, ValueError):
            pass
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    return value


def _existing(config: AppConfig, target: ObjectId) -> Path:
    path = object_path(config, target)
    if not path.exists():
        label = f" ({target.name!r})" if target.name is not None else ""
        raise InspectionError(f"object {target.hex}{label} has no storage (no {path})")
    return path


class _read_only:
    """A read-only connection, closed on exit."""

    def __init__(self, path: Path) -> None:
        self._conn = connect_read_only(path)

    def __enter__(self) -> sqlite3.Connection:
        return self._conn

    def __exit__(self, *exc: object) -> None:
        self._conn.close()
