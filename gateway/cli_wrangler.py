"""wrangler's commands for an app's D1, KV and R2 bindings, beside raydo's own::

    raydo d1 execute DB --local --command "SELECT * FROM users"   # or --file schema.sql
    raydo d1 migrations list|apply DB --local                     # = raydo db migrations
    raydo d1 time-travel info|restore DB [--bookmark B | --timestamp T]  # [replication]
    raydo kv key put|get|list|delete [KEY [VALUE]] --binding CACHE
    raydo r2 object put|get|delete BUCKET/KEY [--file F | --pipe]

``--local`` is accepted and changes nothing (raydo is always local); ``--dir`` is the app's
folder (``raydo.toml`` or wrangler's file). ``DB`` is the database's binding or its
``database_name``, a bucket its ``bucket_name`` or binding, a KV namespace its binding
(``--binding``) or ``id`` (``--namespace-id``), as wrangler allows. ``d1 migrations`` is
``raydo db migrations`` under wrangler's spelling (one implementation, :mod:`.cli_db`).

Every other command goes through the app's binding, as the app's own code does: it starts
the app's runtime in this process (hosts in process, no Ray) on the app's storage folder, so
the binding's checks and limits apply. A folder a running app holds is refused
(``FolderInUse``): stop the app first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from raydo.actors import Env
from raydo.actors.placement import LocalPlacement
from raydo.bindings.d1 import INTERNAL_BINDING, D1Error, D1Result
from raydo.storage import LimitExceeded
from raydo.storage.errors import StorageError
from raydo.storage.folder_lock import FolderInUse

from . import cli_db, cli_time_travel
from .app import Gateway
from .config import AppConfig, ConfigError, load_config

#: Bytes read from a file or stdin at a time for ``r2 object put``.
CHUNK_BYTES = 1 << 20


class BindingNotFound(LookupError):
    """The app's config has no such database, namespace or bucket."""


def database_binding(config: AppConfig, name: str) -> str:
    """The binding of the database named ``name`` (its binding or its ``database_name``)."""
    for key in ("binding", "database_name"):
        for entry in config.d1_databases:
            if entry[key] == name:
                return str(entry["binding"])
    known = ", ".join(str(e["binding"]) for e in config.d1_databases) or "none"
    raise BindingNotFound(f"{config.path}: no [[d1_databases]] database {name!r} (known: {known})")


def namespace_binding(config: AppConfig, binding: str | None, namespace_id: str | None) -> str:
    """The KV binding given by ``--binding`` or ``--namespace-id``."""
    key, wanted = ("binding", binding) if binding is not None else ("id", namespace_id)
    for entry in config.kv_namespaces:
        if entry[key] == wanted:
            return str(entry["binding"])
    known = ", ".join(str(e["binding"]) for e in config.kv_namespaces) or "none"
    raise BindingNotFound(f"{config.path}: no [[kv_namespaces]] {key} {wanted!r} (known: {known})")


def bucket_binding(config: AppConfig, path: str) -> tuple[str, str]:
    """``BUCKET/KEY`` -> (the bucket's binding, the key)."""
    bucket, slash, key = path.partition("/")
    if not slash or not key:
        raise BindingNotFound(f"expected BUCKET/KEY, got {path!r}")
    for field in ("bucket_name", "binding"):
        for entry in config.r2_buckets:
            if entry[field] == bucket:
                return str(entry["binding"]), key
    known = ", ".join(str(e["bucket_name"]) for e in config.r2_buckets) or "none"
    raise BindingNotFound(f"{config.path}: no [[r2_buckets]] bucket {bucket!r} (known: {known})")


@asynccontextmanager
async def open_env(config: AppConfig) -> AsyncIterator[Env]:
    """The app's ``env`` with its runtime in this process for the block; ``FolderInUse``
    while the app runs."""
    gateway = Gateway(config, LocalPlacement)
    try:
        gateway.start()
        yield gateway.env
    finally:
        await gateway.stop()


def split_statements(sql: str) -> list[str]:
    """``sql`` as its statements, each ending where SQLite says one is complete (so a ``;``
    inside a string, a comment or a trigger's body does not end it); blank ones dropped."""
    statements, current = [], ""
    for piece in sql.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                statements.append(current.strip())
            current = ""
    rest = current[:-1].strip()
    if rest and not _only_comments(rest):
        raise D1Error(f"the SQL ends inside a statement: {rest[:80]!r}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


async def execute(config: AppConfig, database: str, sql: str) -> list[D1Result]:
    """Run every statement of ``sql`` on the database, in one transaction (all or none):
    one result a statement."""
    statements = split_statements(sql)
    if not statements:
        return []
    async with open_env(config) as env:
        db = getattr(env, database_binding(config, database))
        found: list[D1Result] = await db.batch([db.prepare(s) for s in statements])
        return found


# ---- the CLI -------------------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    """Add ``raydo d1 ...``, ``raydo kv ...`` and ``raydo r2 ...`` to the CLI's subcommands."""

    def common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--dir", default=".", help="the app's folder (its config)")
        parser.add_argument("--local", action="store_true", help="accepted: raydo is local")
        return parser

    d1 = commands.add_parser("d1", help="the databases, in wrangler's shape")
    d1.set_defaults(handler=_d1)
    d1_actions = d1.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = common(d1_actions.add_parser("execute", help="run SQL on a database"))
    run.add_argument("database", help="the database: its binding or database_name")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--command", help="the SQL to run")
    source.add_argument("--file", help="a file of SQL to run")
    run.add_argument("--json", action="store_true", help="print D1's JSON results")
    travel = d1_actions.add_parser("time-travel", help="a database's bookmarks ([replication])")
    travel_steps = travel.add_subparsers(dest="step", required=True, metavar="STEP")
    for step, text in (
        ("info", "the bookmark of the database now, or at --timestamp"),
        ("restore", "restore the database to --bookmark or --timestamp"),
    ):
        sub = common(travel_steps.add_parser(step, help=text))
        sub.add_argument("database", help="the database: its binding or database_name")
        cli_time_travel.add_restore_arguments(sub, required=step == "restore")
    migrations = d1_actions.add_parser("migrations", help="= raydo db migrations")
    steps = migrations.add_subparsers(dest="step", required=True, metavar="STEP")
    for step, text in (("list", "applied (when) or pending"), ("apply", "apply the pending")):
        common(steps.add_parser(step, help=text)).add_argument(
            "database", help="the database: its binding or database_name"
        )

    kv = commands.add_parser("kv", help="the key-value namespaces, in wrangler's shape")
    kv.set_defaults(handler=_kv)
    kv_topics = kv.add_subparsers(dest="topic", required=True, metavar="TOPIC")
    kv_key = kv_topics.add_parser("key", help="put, get, list or delete keys")
    kv_actions = kv_key.add_subparsers(dest="action", required=True, metavar="ACTION")

    def kv_command(action: str, text: str) -> argparse.ArgumentParser:
        sub = common(kv_actions.add_parser(action, help=text))
        which = sub.add_mutually_exclusive_group(required=True)
        which.add_argument("--binding", help="the namespace's binding")
        which.add_argument("--namespace-id", help="the namespace's id")
        return sub

    put = kv_command("put", "write a value")
    put.add_argument("key")
    put.add_argument("value", nargs="?", help="the value (or --path)")
    put.add_argument("--path", help="read the value from this file")
    put.add_argument("--ttl", type=float, help="seconds until the pair expires")
    put.add_argument("--expiration", type=float, help="epoch seconds it expires at")
    put.add_argument("--metadata", help="JSON metadata")
    get = kv_command("get", "print a value")
    get.add_argument("key")
    get.add_argument("--text", action="store_true", help="decode it as UTF-8 (the default)")
    listing = kv_command("list", "the keys as JSON")
    listing.add_argument("--prefix", default="")
    kv_command("delete", "delete a key").add_argument("key")

    r2 = commands.add_parser("r2", help="the blob buckets, in wrangler's shape")
    r2.set_defaults(handler=_r2)
    r2_topics = r2.add_subparsers(dest="topic", required=True, metavar="TOPIC")
    r2_object = r2_topics.add_parser("object", help="put, get or delete objects")
    r2_actions = r2_object.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("put", "store a file"), ("get", "fetch an object")):
        sub = common(r2_actions.add_parser(action, help=text))
        sub.add_argument("path", help="BUCKET/KEY (the bucket's bucket_name or binding)")
        where = sub.add_mutually_exclusive_group(required=action == "put")
        where.add_argument("--file", help="the file to read (put) or write (get)")
        where.add_argument("--pipe", action="store_true", help="stdin (put) or stdout (get)")
        if action == "put":
            sub.add_argument("--content-type", help="the object's Content-Type")
    r2_delete = common(r2_actions.add_parser("delete", help="delete an object"))
    r2_delete.add_argument("path", help="BUCKET/KEY")


_MISTAKES = (
    ConfigError,
    BindingNotFound,
    FolderInUse,
    D1Error,
    LimitExceeded,
    StorageError,
    OSError,
    ValueError,
    TypeError,
)


def _fail(exc: BaseException) -> int:
    print(f"raydo: error: {exc}", file=sys.stderr)
    return 2


def _d1(args: argparse.Namespace) -> int:
    """``raydo d1 ...``; 0 on success, 2 for a mistake or an SQL error (said on stderr)."""
    try:
        config = load_config(args.dir)
        binding = database_binding(config, args.database)
        if args.action == "migrations":
            return cli_db.main(argparse.Namespace(dir=args.dir, action=args.step, binding=binding))
        if args.action == "time-travel":
            name = _database_name(config, binding)
            return cli_time_travel.d1(config, INTERNAL_BINDING, name, args)
        sql = args.command if args.command is not None else Path(args.file).read_text()
        results = asyncio.run(execute(config, args.database, sql))
    except _MISTAKES as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, default=str))
        return 0
    for result in results:
        _print_rows(result)
    return 0


def _database_name(config: AppConfig, binding: str) -> str:
    for entry in config.d1_databases:
        if entry["binding"] == binding:
            return str(entry["database_name"])
    raise BindingNotFound(binding)  # database_binding() found it


def _print_rows(result: D1Result) -> None:
    meta = result.meta
    if not result.results:
        print(f"ok: {meta.changes} changed, {meta.rows_read} read ({meta.duration:.2f} ms)")
        return
    columns = list(result.results[0])
    print("\t".join(columns))
    for row in result.results:
        print("\t".join("NULL" if row[c] is None else str(row[c]) for c in columns))


def _kv(args: argparse.Namespace) -> int:
    """``raydo kv key ...``; 0 on success (``get`` of a missing key: 1), 2 for a mistake."""
    try:
        config = load_config(args.dir)
        binding = namespace_binding(config, args.binding, args.namespace_id)
        return asyncio.run(_kv_run(config, binding, args))
    except (*_MISTAKES, json.JSONDecodeError) as exc:
        return _fail(exc)


async def _kv_run(config: AppConfig, binding: str, args: argparse.Namespace) -> int:
    value: str | bytes | None = None
    if args.action == "put":
        if (args.value is None) == (args.path is None):
            raise ValueError("give the value, or --path FILE, not both")
        value = args.value if args.path is None else Path(args.path).read_bytes()
    metadata = json.loads(args.metadata) if getattr(args, "metadata", None) else None
    async with open_env(config) as env:
        kv = getattr(env, binding)
        if args.action == "put":
            await kv.put(
                args.key,
                value,
                expiration=args.expiration,
                expiration_ttl=args.ttl,
                metadata=metadata,
            )
            print(f"wrote {args.key!r}")
        elif args.action == "get":
            found = await kv.get(args.key, "bytes")  # a fresh process: nothing cached
            if found is None:
                print(f"raydo: no value for key {args.key!r}", file=sys.stderr)
                return 1
            sys.stdout.buffer.write(found)
            sys.stdout.flush()
        elif args.action == "list":
            keys: list[dict[str, Any]] = []
            cursor = None
            while True:
                page = await kv.list(prefix=args.prefix, cursor=cursor)
                keys += [_key_json(k) for k in page.keys]
                if page.list_complete or page.cursor is None:
                    break
                cursor = page.cursor
            print(json.dumps(keys, indent=2))
        else:
            await kv.delete(args.key)
            print(f"deleted {args.key!r}")
    return 0


def _key_json(key: Any) -> dict[str, Any]:
    shown: dict[str, Any] = {"name": key.name}
    if key.expiration is not None:
        shown["expiration"] = key.expiration
    if key.metadata is not None:
        shown["metadata"] = key.metadata
    return shown


def _r2(args: argparse.Namespace) -> int:
    """``raydo r2 object ...``; 0 on success (``get`` of a missing object: 1), 2 for a
    mistake."""
    try:
        config = load_config(args.dir)
        binding, key = bucket_binding(config, args.path)
        return asyncio.run(_r2_run(config, binding, key, args))
    except _MISTAKES as exc:
        return _fail(exc)


async def _r2_run(config: AppConfig, binding: str, key: str, args: argparse.Namespace) -> int:
    async with open_env(config) as env:
        bucket = getattr(env, binding)
        if args.action == "put":
            http = {"content_type": args.content_type} if args.content_type else None
            source = sys.stdin.buffer if args.pipe else Path(args.file).open("rb")  # noqa: SIM115
            try:
                stored = await bucket.put(key, _read_chunks(source), http_metadata=http)
            finally:
                if not args.pipe:
                    source.close()
            print(f"stored {key!r} ({stored.size} bytes, etag {stored.etag})")
        elif args.action == "get":
            found = await bucket.get(key)
            if found is None:
                print(f"raydo: no object {key!r}", file=sys.stderr)
                return 1
            target = Path(args.file) if args.file else None
            if not args.pipe and target is None:
                target = Path(key.rsplit("/", 1)[-1])  # as wrangler: named after the key
            out = sys.stdout.buffer if target is None else target.open("wb")
            try:
                async for chunk in found.body:
                    out.write(chunk)
            finally:
                if target is not None:
                    out.close()
                else:
                    out.flush()
        else:
            await bucket.delete(key)
            print(f"deleted {key!r}")
    return 0


async def _read_chunks(source: Any) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(source.read, CHUNK_BYTES):
        yield chunk
