"""``raydo vectorize ...``: the vector indexes of an app (``[[vectorize]]``), wrangler's shape.

::

    raydo vectorize create docs --dimensions 384 --metric cosine   # a [[vectorize]] entry
    raydo vectorize insert docs --file vectors.ndjson              # one vector a line
    raydo vectorize query docs --vector 0.1 0.2 ... --top-k 3 --return-metadata all
    raydo vectorize info docs

An index is named by its ``index_name`` or its binding. Every command but ``create`` and
``list`` goes through the index's binding, as the app does: it starts the app's runtime in
this process (hosts in process, no Ray) on the app's storage folder, so the shards load
from their files and their checks and limits apply. A folder a running app holds is
refused (``FolderInUse``): stop the app first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from raydo.actors.placement import LocalPlacement
from raydo.bindings.vectorize import (
    INDEX_TYPES,
    METRICS,
    PRESETS,
    VectorizeError,
    VectorizeIndex,
    VectorMatches,
)
from raydo.storage import LimitExceeded

from .app import Gateway
from .config import AppConfig, ConfigError, load_config

#: From a file of this many bytes on, ``insert`` and ``upsert`` draw a progress bar (on a
#: terminal only).
PROGRESS_FROM_BYTES = 1 << 20


class IndexNotFound(LookupError):
    """The app's config has no ``[[vectorize]]`` entry of that name or binding."""


def index_entry(config: AppConfig, name: str) -> dict[str, Any]:
    """The ``[[vectorize]]`` entry whose ``index_name`` (or else binding) is ``name``."""
    for key in ("index_name", "binding"):
        for entry in config.vectorize:
            if entry[key] == name:
                return dict(entry)
    known = ", ".join(str(e["index_name"]) for e in config.vectorize) or "none"
    raise IndexNotFound(f"{config.path}: no [[vectorize]] index {name!r} (indexes: {known})")


@asynccontextmanager
async def open_index(
    app: str | os.PathLike[str] | AppConfig, name: str
) -> AsyncIterator[VectorizeIndex]:
    """The index ``name`` of the app (its folder or config), through its binding, with the
    app's runtime in this process for the block; ``FolderInUse`` while the app runs."""
    config = app if isinstance(app, AppConfig) else load_config(app)
    entry = index_entry(config, name)
    gateway = Gateway(config, LocalPlacement)
    try:
        gateway.start()
        index: VectorizeIndex = getattr(gateway.env, str(entry["binding"]))
        yield index
    finally:
        await gateway.stop()


def add_commands(commands: Any) -> None:
    """Add ``raydo vectorize ...`` to the CLI's subcommands."""
    top = commands.add_parser("vectorize", help="the vector indexes ([[vectorize]])")
    top.set_defaults(handler=main)
    actions = top.add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(action: str, text: str, *, named: bool = True) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(action, help=text)
        if named:
            sub.add_argument("name", help="the index: its index_name or its binding")
        sub.add_argument("--dir", default=".", help="the app's folder (holding raydo.toml)")
        return sub

    create = command("create", "add a [[vectorize]] entry to raydo.toml")
    shape = create.add_mutually_exclusive_group(required=True)
    shape.add_argument("--dimensions", type=int, help="the vectors' length")
    shape.add_argument("--preset", choices=sorted(PRESETS), help="an embedding model's shape")
    create.add_argument("--metric", choices=METRICS, help="default: cosine (or the preset's)")
    create.add_argument("--binding", help="the env name (default: VECTORIZE, or NAME upper)")
    create.add_argument("--shards", type=int, help="objects the index spreads over")
    command("list", "every index of the app: binding, shape, vectors", named=False)
    command("info", "an index's shape, vectors, last mutation and shards")
    delete = command("delete", "delete every vector and metadata index of an index")
    delete.add_argument("--force", action="store_true", help="do not ask")
    for action in ("insert", "upsert"):
        sub = command(action, f"{action} the vectors of an NDJSON file")
        sub.add_argument("--file", required=True, help="one JSON vector a line ('-': stdin)")
        sub.add_argument("--batch-size", type=int, default=1000, help="vectors a call")
    query = command("query", "the vectors closest to a vector, or to a stored one")
    target = query.add_mutually_exclusive_group(required=True)
    target.add_argument("--vector", type=float, nargs="+", help="the query's values")
    target.add_argument("--vector-id", help="query with this stored vector's values")
    query.add_argument("--top-k", type=int, default=5)
    query.add_argument("--return-values", action="store_true")
    query.add_argument("--return-metadata", choices=("none", "indexed", "all"), default="none")
    query.add_argument("--namespace")
    query.add_argument("--filter", help='a JSON filter, e.g. \'{"year": {"$gte": 2000}}\'')
    for action, text in (
        ("get-vectors", "the stored vectors of ids"),
        ("delete-vectors", "delete the vectors of ids"),
    ):
        command(action, text).add_argument("--ids", nargs="+", required=True)
    listing = command("list-vectors", "a page of ids, in order")
    listing.add_argument("--count", type=int, default=100, help="ids a page, 1-1000")
    listing.add_argument("--cursor", default="", help="where the previous page ended")
    made = command("create-metadata-index", "make a metadata property filterable")
    made.add_argument("--property-name", required=True)
    made.add_argument("--type", required=True, choices=INDEX_TYPES)
    command("list-metadata-index", "an index's metadata indexes")
    dropped = command("delete-metadata-index", "drop a metadata index")
    dropped.add_argument("--property-name", required=True)


def main(args: argparse.Namespace) -> int:
    """Run ``raydo vectorize ACTION``; 0 on success, 2 for a mistake (said on stderr)."""
    try:
        if args.action == "create":
            return _create(args)
        config = load_config(args.dir)
        if args.action == "list":
            return asyncio.run(_list(config))
        if args.action == "delete" and not args.force and not _confirm(args.name):
            print("raydo: not deleted", file=sys.stderr)
            return 2
        return asyncio.run(_run(config, args))
    except (
        ConfigError,
        IndexNotFound,
        VectorizeError,
        LimitExceeded,
        BadFile,
        OSError,
    ) as exc:
        print(f"raydo: error: {exc}", file=sys.stderr)
        return 2


def _confirm(name: str) -> bool:
    if not sys.stdin.isatty():
        raise VectorizeError("delete asks first: give --force to delete without a terminal")
    answer = input(f"delete every vector of index {name!r}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _create(args: argparse.Namespace) -> int:
    """Append a ``[[vectorize]]`` entry to the app's raydo.toml, checked by loading it."""
    config = load_config(args.dir)
    if config.path.name != "raydo.toml":
        raise VectorizeError(
            f"{config.path} is not a raydo.toml: add the [[vectorize]] entry to it by hand"
        )
    if any(e["index_name"] == args.name for e in config.vectorize):
        raise VectorizeError(f"{config.path} already has an index {args.name!r}")
    bindings = {str(e["binding"]) for e in config.vectorize}
    binding = args.binding or (
        "VECTORIZE" if "VECTORIZE" not in bindings else _binding_of(args.name)
    )
    lines = ["[[vectorize]]", f"binding = {json.dumps(binding)}"]
    lines.append(f"index_name = {json.dumps(args.name)}")
    if args.preset is not None:
        lines.append(f"preset = {json.dumps(args.preset)}")
    else:
        lines.append(f"dimensions = {int(args.dimensions)}")
    if args.metric is not None:
        lines.append(f"metric = {json.dumps(args.metric)}")
    if args.shards is not None:
        lines.append(f"shards = {int(args.shards)}")
    snippet = "\n".join(lines) + "\n"
    before = config.path.read_text(encoding="utf-8")
    joint = (
        "" if before.endswith("\n\n") or not before else "\n" if before.endswith("\n") else "\n\n"
    )
    config.path.write_text(before + joint + snippet, encoding="utf-8")
    try:
        load_config(config.path)
    except ConfigError:
        config.path.write_text(before, encoding="utf-8")  # the file as it was
        raise
    print(f"added to {config.path}:\n\n{snippet}")
    return 0


def _binding_of(name: str) -> str:
    text = "".join(c if c.isalnum() else "_" for c in name.upper())
    return text if text[:1].isalpha() else f"V_{text}"


async def _list(config: AppConfig) -> int:
    if not config.vectorize:
        print(f"no [[vectorize]] indexes in {config.path}")
        return 0
    gateway = Gateway(config, LocalPlacement)
    try:
        gateway.start()
        print("index\tbinding\tdimensions\tmetric\tshards\tvectors")
        for entry in config.vectorize:
            index: VectorizeIndex = getattr(gateway.env, str(entry["binding"]))
            info = await index.describe()
            print(
                f"{index.index_name}\t{entry['binding']}\t{info.dimensions}\t{info.metric}"
                f"\t{index.shards}\t{info.vector_count}"
            )
    finally:
        await gateway.stop()
    return 0


async def _run(config: AppConfig, args: argparse.Namespace) -> int:
    async with open_index(config, args.name) as index:
        action = args.action
        if action == "info":
            await _info(index)
        elif action == "delete":
            await index.drop()
            print(
                f"deleted every vector and metadata index of {index.index_name!r}; its"
                f" [[vectorize]] entry stays in {config.path} (remove it to retire the binding)"
            )
        elif action in ("insert", "upsert"):
            await _load(index, action, args.file, args.batch_size)
        elif action == "query":
            await _query(index, args)
        elif action == "get-vectors":
            found = await index.get_by_ids(args.ids)
            _print_json(
                [
                    {
                        "id": v.id,
                        "values": v.values,
                        "namespace": v.namespace,
                        "metadata": v.metadata,
                    }
                    for v in found
                ]
            )
        elif action == "delete-vectors":
            done = await index.delete_by_ids(args.ids)
            print(f"deleted {done.count} vectors (mutation {done.mutation_id})")
        elif action == "list-vectors":
            ids, cursor = await index.list_ids(args.cursor, args.count)
            for id_ in ids:
                print(id_)
            if cursor is not None:
                print(f"next page: --cursor {cursor}", file=sys.stderr)
        elif action == "create-metadata-index":
            await index.create_metadata_index(args.property_name, args.type)
            print(f"created a {args.type} metadata index on {args.property_name!r}")
        elif action == "list-metadata-index":
            for made in await index.list_metadata_indexes():
                print(f"{made.property_name}\t{made.index_type}")
        else:  # delete-metadata-index
            await index.delete_metadata_index(args.property_name)
            print(f"deleted the metadata index on {args.property_name!r}")
    return 0


async def _info(index: VectorizeIndex) -> None:
    info = await index.describe()
    print(f"index\t{index.index_name}")
    print(f"dimensions\t{info.dimensions}")
    print(f"metric\t{info.metric}")
    print(f"vectors\t{info.vector_count}")
    print(f"processed_up_to_mutation\t{info.processed_up_to_mutation}")
    print(f"processed_up_to_datetime\t{info.processed_up_to_datetime}")
    for k, shard in enumerate(await index.shard_status()):
        search = "graph" if shard["graph"] else "exact"
        if shard.get("graph_building"):
            search = "exact (its graph being built)"
        print(
            f"shard {k}\t{shard['count']} vectors, {search} search, loaded in"
            f" {shard['load_seconds']:.3f} s, graph built in {shard['graph_seconds']:.3f} s,"
            f" {shard['memory_bytes'] / 2**20:.1f} MiB"
        )


async def _query(index: VectorizeIndex, args: argparse.Namespace) -> None:
    filter = None
    if args.filter is not None:
        try:
            filter = json.loads(args.filter)
        except ValueError as exc:
            raise VectorizeError(f"--filter is not JSON: {exc}") from None
    options: dict[str, Any] = {
        "top_k": args.top_k,
        "namespace": args.namespace,
        "return_values": args.return_values,
        "return_metadata": args.return_metadata,
        "filter": filter,
    }
    found: VectorMatches
    if args.vector_id is not None:
        found = await index.query_by_id(args.vector_id, **options)
    else:
        found = await index.query(args.vector, **options)
    matches = []
    for m in found.matches:
        match: dict[str, Any] = {"id": m.id, "score": m.score}
        for key in ("values", "namespace", "metadata"):
            if getattr(m, key) is not None:
                match[key] = getattr(m, key)
        matches.append(match)
    _print_json({"count": found.count, "matches": matches})


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


# ---- NDJSON files --------------------------------------------------------------------------


class BadFile(ValueError):
    """A line of an NDJSON file that is not a vector; nothing of the file was written."""


def _lines(path: str) -> Iterator[tuple[int, int, str]]:
    """``(line number, bytes read so far, text)`` of each non-blank line."""
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        read = 0
        for number, raw in enumerate(stream, 1):
            read += len(raw)
            text = raw.decode("utf-8", errors="strict").strip()
            if text:
                yield number, read, text
    except UnicodeDecodeError:
        raise BadFile(f"{path}: line {number} is not UTF-8") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _batches(path: str, size: int) -> Iterator[tuple[list[int], list[Any], int]]:
    numbers: list[int] = []
    vectors: list[Any] = []
    read = 0
    for number, read, text in _lines(path):
        try:
            vectors.append(json.loads(text))
        except ValueError as exc:
            raise BadFile(f"{path}: line {number} is not JSON: {exc}") from None
        numbers.append(number)
        if len(vectors) == size:
            yield numbers, vectors, read
            numbers, vectors = [], []
    if vectors:
        yield numbers, vectors, read


async def _load(index: VectorizeIndex, mode: str, path: str, batch_size: int) -> None:
    """Check every line of ``path`` first (nothing written if one is wrong), then write it
    in batches, with a progress bar over the file's bytes for a big file on a terminal."""
    if not 1 <= batch_size <= index.limits.max_batch:
        raise VectorizeError(f"--batch-size must be from 1 to {index.limits.max_batch}")
    if path == "-":
        # stdin cannot be read twice: checked as it is written, batch by batch.
        total = 0
        async for count in _write(index, mode, path, batch_size, None):
            total += count
        print(f"{mode}ed {total} vectors into {index.index_name!r}")
        return
    size = Path(path).stat().st_size
    seen: dict[str, int] = {}
    bar = _bar(size, "checking")
    try:
        for numbers, vectors, read in _batches(path, batch_size):
            _check(index, path, numbers, vectors, seen)
            if bar is not None:
                bar.update(read - bar.n)
    finally:
        if bar is not None:
            bar.close()
    if not seen:
        raise BadFile(f"{path}: no vectors")
    total = 0
    bar = _bar(size, f"{mode}ing")
    try:
        async for count in _write(index, mode, path, batch_size, bar):
            total += count
    finally:
        if bar is not None:
            bar.close()
    print(f"{mode}ed {total} of {len(seen)} vectors into {index.index_name!r}")


def _check(
    index: VectorizeIndex,
    path: str,
    numbers: list[int],
    vectors: list[Any],
    seen: dict[str, int],
) -> None:
    for number, vector in zip(numbers, vectors, strict=True):
        id_ = vector.get("id") if isinstance(vector, dict) else None
        if isinstance(id_, str):
            if id_ in seen:
                raise BadFile(f"{path}: line {number}: id {id_!r} is on line {seen[id_]} too")
            seen[id_] = number
    try:
        index.check(vectors)
    except (VectorizeError, LimitExceeded):
        for number, vector in zip(numbers, vectors, strict=True):  # which line it was
            try:
                index.check([vector])
            except (VectorizeError, LimitExceeded) as exc:
                raise BadFile(f"{path}: line {number}: {exc}") from None
        raise


async def _write(
    index: VectorizeIndex, mode: str, path: str, batch_size: int, bar: Any
) -> AsyncIterator[int]:
    write = index.insert if mode == "insert" else index.upsert
    for numbers, vectors, read in _batches(path, batch_size):
        try:
            done = await write(vectors)
        except (VectorizeError, LimitExceeded) as exc:
            raise BadFile(f"{path}: lines {numbers[0]}-{numbers[-1]}: {exc}") from None
        if bar is not None:
            bar.update(read - bar.n)
        yield done.count


def _bar(total: int, what: str) -> Any:
    if total < PROGRESS_FROM_BYTES:
        return None
    from tqdm import tqdm

    # disable=None: drawn on a terminal only, so logs and pipes stay clean.
    return tqdm(total=total, unit="B", unit_scale=True, desc=what, file=sys.stderr, disable=None)
