"""Loading and checking ``raydo.toml``, the one config file of an app.

:func:`load_config` takes the file, or the folder holding it, and returns a frozen
:class:`AppConfig`, or raises :class:`ConfigError`, whose message starts with the file's path and
then the dotted key at fault (``durable_objects.bindings[0].shards: ...``). In order, it:

1. finds the file: a folder means ``<folder>/raydo.toml``;
2. reads its bytes, refusing files over 1 MiB, and decodes them as UTF-8 (a BOM is allowed);
3. parses them with :mod:`tomllib`;
4. checks each table against its table of field specs below: unknown keys first (with the closest
   known key suggested), then missing required keys, then each value's type and range, in
   document order. A bool is never accepted as an integer, and TOML has no null, so a spec's parser
   returns ``None`` to reject a value;
5. checks across tables: a binding name is used once over every kind of binding, a queue has at
   most one consumer and is not its own dead-letter queue;
6. resolves ``storage`` against the file's folder and builds the result.

The platform sections (D1 databases, R2 buckets, KV namespaces, queues) are checked for shape
only and kept as plain dicts with their defaults filled in; the code serving them reads those.
Every string that later becomes a name on disk (app, binding, database, bucket, queue, namespace
id) must match a narrow pattern, so none can hold a path separator, NUL or ``..``.
"""

from __future__ import annotations

import difflib
import keyword
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from raydo.actors import BindingSpec
from raydo.bindings.ai import EMBEDDING_MODELS, POOL_KEYS
from raydo.bindings.vectorize import METRICS, PRESETS, VectorLimits
from raydo.storage.limits import DEFAULT_LIMITS, Limits, MiB
from raydo.storage.replication import ReplicationSettings, parse_store_url

from . import wrangler_config
from .config_files import CONFIG_NAME as CONFIG_NAME
from .config_files import MAX_CONFIG_BYTES as MAX_CONFIG_BYTES
from .config_files import ConfigError as ConfigError
from .config_files import read_text as read_text

DEFAULT_STORAGE = ".raydo"

_APP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_BINDING_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,62}")
_RESOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REPR_MAX = 80


#: One ``[[durable_objects.bindings]]`` entry. The schema is the hosts' own
#: :class:`actors.BindingSpec`, so config and runtime cannot drift apart; this module only
#: checks each of its fields (``_OBJECT_BINDING_FIELDS``).
ObjectBinding = BindingSpec


@dataclass(frozen=True, slots=True)
class AppConfig:
    """A checked ``raydo.toml``; every path in it is absolute."""

    path: Path
    root: Path
    name: str
    main: str
    storage: Path
    durability: str = "normal"
    durable_objects: tuple[ObjectBinding, ...] = ()
    limits: Limits = DEFAULT_LIMITS
    d1_databases: tuple[dict[str, object], ...] = ()
    r2_buckets: tuple[dict[str, object], ...] = ()
    kv_namespaces: tuple[dict[str, object], ...] = ()
    queue_producers: tuple[dict[str, object], ...] = ()
    queue_consumers: tuple[dict[str, object], ...] = ()
    vectorize: tuple[dict[str, object], ...] = ()
    """``[[vectorize]]``: the vector indexes, each with its shape and limits filled in."""
    replication: ReplicationSettings | None = None
    """``[replication]``: where every object's log is shipped; None keeps files local."""
    vars: dict[str, object] = field(default_factory=dict)
    """``[vars]``: plain values on ``env`` (strings, numbers, booleans, JSON-shaped tables)."""
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """Strings on ``env``: in dev from ``.dev.vars`` (else ``.env``) beside the config and,
    for names ``[secrets] required`` lists, the environment; under ``raydo serve`` the listed
    names from its environment only (see :func:`resolve_secrets`)."""
    required_secrets: tuple[str, ...] = ()
    """``[secrets] required``: the secrets the app needs (wrangler's ``secrets.required``)."""
    missing_secrets: tuple[str, ...] = ()
    """Required secrets that dev found nowhere, said once at start (under serve: an error)."""
    import_root: Path | None = None
    """Where ``main``'s module and the object classes are imported from; None: ``root``.
    A wrangler config's ``main = "src/entry.py"`` makes it ``src``."""
    ignored: tuple[str, ...] = ()
    """Keys of a wrangler config that raydo accepts and does not use, listed once at start."""
    class_migrations: tuple[dict[str, object], ...] = ()
    """A wrangler config's ``migrations``: ``{"tag", "renamed", "deleted"}`` in order."""
    crons: tuple[str, ...] = ()
    """``[triggers] crons``: when the ``scheduled`` handler runs (UTC)."""
    cron_handler: str | None = None
    """``[triggers] handler``; None: the ``scheduled`` function of ``main``'s module."""
    assets: dict[str, object] | None = None
    """``[assets]``: the static folder (its ``directory`` absolute) and how it is served."""
    ai: dict[str, object] | None = None
    """``[ai]``: the model binding, its folders absolute (``models_dir``, ``models``)."""

    @property
    def code_root(self) -> Path:
        """The folder the app's modules are imported from."""
        return self.import_root if self.import_root is not None else self.root

    def binding(self, name: str) -> ObjectBinding:
        """The durable object binding called ``name``; KeyError when there is none."""
        for binding in self.durable_objects:
            if binding.name == name:
                return binding
        known = ", ".join(b.name for b in self.durable_objects) or "none"
        raise KeyError(f"{self.path}: no durable object binding named {name!r} (bindings: {known})")


# Field specs: what a key must hold, said once for the messages and once as a parser.


@dataclass(frozen=True, slots=True)
class _Field:
    expected: str
    parse: Callable[[object], object | None]
    """The value to keep, or None when the TOML value is not acceptable."""
    required: bool = False
    secret: bool = False


def _required(spec: _Field) -> _Field:
    return replace(spec, required=True)


def _integer(lo: int, hi: int | None) -> _Field:
    def parse(value: object) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value if lo <= value and (hi is None or value <= hi) else None

    if hi is None:
        return _Field("a positive integer" if lo == 1 else f"an integer of at least {lo}", parse)
    return _Field(f"an integer from {lo} to {hi}", parse)


def _number(lo: int, hi: int, *, above: bool) -> _Field:
    """An int or float in range, kept as a float; ``above`` excludes ``lo`` itself."""

    def parse(value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        in_range = (lo < value if above else lo <= value) and value <= hi  # NaN fails both
        return float(value) if in_range else None

    expected = f"greater than {lo} and at most {hi}" if above else f"from {lo} to {hi}"
    return _Field(f"a number {expected}", parse)


def _text(min_len: int = 1, max_len: int | None = None, *, secret: bool = False) -> _Field:
    def parse(value: object) -> str | None:
        if not isinstance(value, str) or "\0" in value:
            return None
        return (
            value if min_len <= len(value) and (max_len is None or len(value) <= max_len) else None
        )

    size = (
        "a non-empty string"
        if max_len is None
        else f"a string of {min_len} to {max_len} characters"
    )
    return _Field(f"{size} without NUL", parse, secret=secret)


def _name(pattern: re.Pattern[str], what: str) -> _Field:
    def parse(value: object) -> str | None:
        if isinstance(value, str) and pattern.fullmatch(value) and ".." not in value:
            return value
        return None

    dots = " and without '..'" if "." in pattern.pattern else ""
    return _Field(f"{what} matching ^{pattern.pattern}${dots}", parse)


def _reference(attribute: str) -> _Field:
    """``module:attribute``: a dotted module path, a colon, one identifier."""

    def parse(value: object) -> str | None:
        if not isinstance(value, str):
            return None
        module, colon, name = value.partition(":")
        parts = [*module.split("."), name]
        ok = colon and all(_IDENTIFIER.fullmatch(p) and not keyword.iskeyword(p) for p in parts)
        return value if ok else None

    return _Field(f"'module:{attribute}' (a dotted module path, a colon, an identifier)", parse)


def _choice(*options: str) -> _Field:
    def parse(value: object) -> str | None:
        return value if isinstance(value, str) and value in options else None

    return _Field("one of " + ", ".join(repr(o) for o in options), parse)


def _table(header: str) -> _Field:
    return _Field(f"a table ([{header}])", lambda v: v if isinstance(v, dict) else None)


def _tables(header: str) -> _Field:
    return _Field(
        f"an array of tables ([[{header}]])",
        lambda v: v if isinstance(v, list) else None,
    )


_BINDING = _required(_name(_BINDING_NAME, "a binding name"))

_TOP_FIELDS = {
    "name": _required(_name(_APP_NAME, "an app name")),
    "main": _required(_reference("attribute")),
    "storage": _text(),
    "durability": _choice("normal", "full"),
    "durable_objects": _table("durable_objects"),
    "limits": _table("limits"),
    "d1_databases": _tables("d1_databases"),
    "r2_buckets": _tables("r2_buckets"),
    "kv_namespaces": _tables("kv_namespaces"),
    "queues": _table("queues"),
    "vectorize": _tables("vectorize"),
    "replication": _table("replication"),
    "vars": _table("vars"),
    "triggers": _table("triggers"),
    "assets": _table("assets"),
    "secrets": _table("secrets"),
    "ai": _table("ai"),
}
_DURABLE_OBJECTS_FIELDS = {"bindings": _tables("durable_objects.bindings")}
#: The per-event time limits (see ``actors._limits``), keys of object and database bindings.
_EVENT_LIMIT_FIELDS = {
    "cpu_ms": _integer(1, 3_600_000),
    "event_seconds": _number(0, 86400, above=True),
}
_OBJECT_BINDING_FIELDS = {
    "name": _BINDING,
    "class_name": _required(_reference("Class")),
    "shards": _integer(1, 4096),
    "placement": _choice("sharded", "dedicated"),
    "concurrency": _choice("strict", "gates"),
    "idle_timeout_s": _number(0, 86400, above=True),
    "max_live_objects": _integer(1, 10_000_000),
    "mailbox_limit": _integer(1, 1_000_000),
    "queue_wait_seconds": _number(0, 86400, above=True),
    "namespace_key": _text(16, 256, secret=True),
    **_EVENT_LIMIT_FIELDS,
    "host_stall_seconds": _number(0, 3600, above=True),
}
_LIMIT_FIELDS = {name: _integer(1, None) for name in Limits.names()}
_D1_FIELDS = {
    "binding": _BINDING,
    "database_name": _required(_name(_RESOURCE_NAME, "a database name")),
    "migrations_dir": _text(),
    **_EVENT_LIMIT_FIELDS,
}
_R2_FIELDS = {
    "binding": _BINDING,
    "bucket_name": _required(_name(_RESOURCE_NAME, "a bucket name")),
    "backend": _choice("filesystem", "s3"),
    "endpoint_url": _Field(
        "an http:// or https:// URL",
        lambda v: (
            v if isinstance(v, str) and re.fullmatch(r"https?://[^\s\0]{1,2040}", v) else None
        ),
    ),
    "region": _name(_RESOURCE_NAME, "a region name"),
    "s3_bucket": _name(_RESOURCE_NAME, "an S3 bucket name"),
    "presign_secret_env": _name(_IDENTIFIER, "an environment variable name"),
}
_R2_S3_ONLY = ("endpoint_url", "region", "s3_bucket")
_R2_DEFAULTS: dict[str, object] = {
    "backend": "filesystem",
    "endpoint_url": None,
    "region": None,
    "s3_bucket": None,
    "presign_secret_env": None,
}
_KV_FIELDS = {
    "binding": _BINDING,
    "id": _name(_RESOURCE_NAME, "a namespace id"),
    "cache_ttl": _number(0, 31_536_000, above=False),
    "min_ttl": _number(0, 31_536_000, above=False),
    "cache_bytes": _integer(0, None),
}
_VECTOR_LIMIT_DEFAULTS = VectorLimits()
_VECTORIZE_FIELDS = {
    "binding": _BINDING,
    "index_name": _required(_name(_RESOURCE_NAME, "an index name")),
    "dimensions": _integer(1, 65_536),
    "preset": _choice(*PRESETS),
    "metric": _choice(*METRICS),
    "shards": _integer(1, 256),
    "exact_below": _integer(1, None),
    "graph_build_wait_seconds": _number(0, 86_400, above=False),
    **{name: _integer(1, None) for name in VectorLimits.names()},
}
_AI_FIELDS = {
    "binding": _BINDING,
    "models_dir": _text(),
    "models": _table("ai.models"),
    "replicas": _integer(1, 1024),
    "num_cpus": _number(0, 1024, above=False),
    "num_gpus": _number(0, 1024, above=False),
    "max_batch_texts": _integer(1, 4096),
    "batch_wait_ms": _number(0, 10_000, above=False),
    "max_queue_texts": _integer(1, 10_000_000),
    "pools": _table("ai.pools"),
    "text": _table("ai.text"),
}
_AI_TEXT_FIELDS = {
    "base_url": _required(
        _Field(
            "an http:// or https:// URL",
            lambda v: (
                v if isinstance(v, str) and re.fullmatch(r"https?://[^\s\0]{1,2040}", v) else None
            ),
        )
    ),
    "api_key_env": _name(_IDENTIFIER, "an environment variable name"),
    "timeout_seconds": _number(0, 3600, above=True),
    "models": _table("ai.text.models"),
}
_QUEUES_FIELDS = {
    "producers": _tables("queues.producers"),
    "consumers": _tables("queues.consumers"),
}
_QUEUE = _required(_name(_RESOURCE_NAME, "a queue name"))
_PRODUCER_FIELDS = {"binding": _BINDING, "queue": _QUEUE}
_CONSUMER_FIELDS = {
    "queue": _QUEUE,
    "max_batch_size": _integer(1, 100),
    "max_batch_timeout": _number(0, 60, above=False),
    "max_retries": _integer(0, 100),
    "dead_letter_queue": _name(_RESOURCE_NAME, "a queue name"),
    # Absent: the ``queue`` function of ``main``'s module (a Worker's ``queue()`` handler).
    "handler": _reference("function"),
    "retry_delay": _number(0, 43200, above=False),
}


def _store_url(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parse_store_url(value)
    except ValueError:
        return None
    return value


_URL = _Field(
    "an http:// or https:// URL",
    lambda v: v if isinstance(v, str) and re.fullmatch(r"https?://[^\s\0]{1,2040}", v) else None,
)
_REPLICATION_FIELDS = {
    "url": _required(_Field("an s3://bucket/prefix URL (a bucket name, then a path)", _store_url)),
    "mode": _choice("sync", "async"),
    "retention_days": _number(0, 3650, above=True),
    "endpoint_url": _URL,
    "region": _name(_RESOURCE_NAME, "a region name"),
    "sync_deadline_s": _number(0, 600, above=True),
    "async_interval_s": _number(0, 3600, above=True),
    "host_log": _Field("true or false", lambda v: v if isinstance(v, bool) else None),
    "write_back_s": _number(0, 86400, above=True),
}


def _crons(value: object) -> list[str] | None:
    from raydo.bindings.cron import CronError, check_cron

    if not isinstance(value, list):
        return None
    try:
        return [check_cron(c) for c in value]
    except CronError:
        return None


_TRIGGERS_FIELDS = {
    "crons": _Field(
        "an array of five-field cron expressions (minute hour day-of-month month"
        " day-of-week, UTC), each of which fires",
        _crons,
    ),
    # Absent: the ``scheduled`` function of ``main``'s module (a Worker's scheduled handler).
    "handler": _reference("function"),
}


def _worker_first(value: object) -> object:
    from raydo.bindings.assets import check_routes

    if isinstance(value, bool):
        return value
    try:
        return check_routes(value)
    except ValueError:
        return None


_ASSETS_FIELDS = {
    "directory": _required(_text()),
    "binding": _name(_BINDING_NAME, "a binding name"),
    "run_worker_first": _Field(
        'true, false, or a list of route patterns ("/api/*", "!/api/docs/*")',
        _worker_first,
    ),
    "html_handling": _choice(
        "auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none"
    ),
    "not_found_handling": _choice("none", "single-page-application", "404-page"),
}
_ASSETS_DEFAULTS: dict[str, object] = {
    "binding": None,
    "run_worker_first": False,
    "html_handling": "auto-trailing-slash",
    "not_found_handling": "none",
}
_D1_DEFAULTS: dict[str, object] = {"migrations_dir": "migrations"}
_KV_DEFAULTS: dict[str, object] = {
    "id": None,
    "cache_ttl": 60.0,
    "min_ttl": 60.0,
    "cache_bytes": 64 * MiB,
}
_CONSUMER_DEFAULTS: dict[str, object] = {
    "max_batch_size": 10,
    "max_batch_timeout": 5.0,
    "max_retries": 3,
    "dead_letter_queue": None,
}


# Reading tables against their specs.


def _show(value: object, *, secret: bool = False) -> str:
    """A value for a message: its repr cut to 80 characters, or only its shape if secret."""
    if secret:
        return (
            f"a string of {len(value)} characters"
            if isinstance(value, str)
            else f"a value of type {type(value).__name__}"
        )
    text = repr(value)
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _unknown(name: str, known: Mapping[str, _Field]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {_show(name)}{hint}; known keys: {', '.join(known)}"


def _read_table(file: Path, key: str, data: object, fields: Mapping[str, _Field]) -> dict[str, Any]:
    """Check one table against its specs; return the parsed values of the keys it holds."""
    if not isinstance(data, dict):
        raise ConfigError(file, key, f"expected a table, got {_show(data)}")
    for name in data:
        if name not in fields:
            raise ConfigError(file, _join(key, name), _unknown(name, fields))
    for name, spec in fields.items():
        if spec.required and name not in data:
            raise ConfigError(file, _join(key, name), f"missing required key {name!r}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        spec = fields[name]
        parsed = spec.parse(value)
        if parsed is None:
            got = _show(value, secret=spec.secret)
            raise ConfigError(file, _join(key, name), f"expected {spec.expected}, got {got}")
        values[name] = parsed
    return values


def _read_array(
    file: Path, key: str, items: list[object], fields: Mapping[str, _Field]
) -> list[tuple[str, dict[str, Any]]]:
    """Check each table of an array of tables; pair each with its key path (``key[i]``)."""
    return [
        (f"{key}[{i}]", _read_table(file, f"{key}[{i}]", item, fields))
        for i, item in enumerate(items)
    ]


def _read_platform(
    file: Path,
    key: str,
    items: list[object],
    fields: Mapping[str, _Field],
    defaults: Mapping[str, object] | None = None,
) -> list[tuple[str, dict[str, object]]]:
    return [
        (where, {**(defaults or {}), **values})
        for where, values in _read_array(file, key, items, fields)
    ]


# Finding, reading and parsing the file.


def _locate(given: Path) -> Path:
    path = given.resolve()
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.exists():
        missing = (
            f"no {CONFIG_NAME} (nor wrangler.jsonc, wrangler.json, wrangler.toml) in {path.parent}"
            if path.name == CONFIG_NAME
            else f"no such file or folder (give an app folder holding {CONFIG_NAME}, or the file)"
        )
        raise ConfigError(path, "", missing)
    if not path.is_file():
        raise ConfigError(path, "", "not a regular file")
    return path


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "", f"invalid TOML: {e}") from e


# Checks across tables.


def _check_unique_bindings(file: Path, names: list[tuple[str, object]]) -> None:
    """``names`` pairs each binding name's key path with the name; the later one is reported."""
    seen: dict[object, str] = {}
    for where, name in names:
        if name in seen:
            raise ConfigError(file, where, f"binding name {name!r} is already used by {seen[name]}")
        seen[name] = where


def _check_consumers(file: Path, consumers: list[tuple[str, dict[str, object]]]) -> None:
    seen: dict[object, str] = {}
    for where, consumer in consumers:
        queue = consumer["queue"]
        if queue in seen:
            raise ConfigError(
                file,
                f"{where}.queue",
                f"queue {queue!r} already has a consumer at {seen[queue]}",
            )
        if consumer["dead_letter_queue"] == queue:
            raise ConfigError(
                file,
                f"{where}.dead_letter_queue",
                f"queue {queue!r} cannot be its own dead-letter queue",
            )
        seen[queue] = where


def _check_buckets(file: Path, buckets: list[tuple[str, dict[str, object]]]) -> None:
    for where, bucket in buckets:
        if bucket["backend"] != "s3":
            for name in _R2_S3_ONLY:
                if bucket[name] is not None:
                    raise ConfigError(
                        file,
                        f"{where}.{name}",
                        'only used with backend = "s3"; add that or remove it',
                    )


def _check_indexes(file: Path, indexes: list[tuple[str, dict[str, object]]]) -> None:
    """Each index has a shape (``dimensions`` or a ``preset``) within its limit, and a name
    used once."""
    names: dict[object, str] = {}
    for where, entry in indexes:
        preset = entry.get("preset")
        if "dimensions" not in entry and preset is None:
            raise ConfigError(file, f"{where}.dimensions", "give dimensions or a preset")
        if preset is not None:
            dimensions, metric = PRESETS[str(preset)]
            entry.setdefault("dimensions", dimensions)
            entry.setdefault("metric", metric)
        entry.setdefault("metric", "cosine")
        entry.setdefault("shards", 1)
        most = int(str(entry.get("max_dimensions", _VECTOR_LIMIT_DEFAULTS.max_dimensions)))
        if int(str(entry["dimensions"])) > most:
            raise ConfigError(
                file,
                f"{where}.dimensions",
                f"{entry['dimensions']} is over max_dimensions ({most}); raise max_dimensions"
                " in the entry to allow it",
            )
        if entry["index_name"] in names:
            raise ConfigError(
                file,
                f"{where}.index_name",
                f"index {entry['index_name']!r} is already bound at {names[entry['index_name']]}",
            )
        names[entry["index_name"]] = where


_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _read_assets(file: Path, data: object) -> dict[str, object]:
    """``[assets]`` with its defaults, ``directory`` made absolute: a folder inside the app's
    or beside its config, which must exist."""
    assets = {**_ASSETS_DEFAULTS, **_read_table(file, "assets", data, _ASSETS_FIELDS)}
    folder = (file.parent / str(assets["directory"])).resolve()
    if not folder.is_dir():
        raise ConfigError(file, "assets.directory", f"{folder} is not a folder")
    assets["directory"] = str(folder)
    return assets


def _read_ai(file: Path, data: object) -> dict[str, object]:
    """``[ai]`` with its folders made absolute: ``models_dir`` must be a folder; each
    ``[ai.models]`` entry maps a model name to a folder (checked when the model loads)."""
    ai = _read_table(file, "ai", data, _AI_FIELDS)
    if "models_dir" in ai:
        folder = (file.parent / str(ai["models_dir"])).resolve()
        if not folder.is_dir():
            raise ConfigError(file, "ai.models_dir", f"{folder} is not a folder")
        ai["models_dir"] = str(folder)
    models: dict[str, str] = {}
    for name, where in ai.get("models", {}).items():
        if not (isinstance(where, str) and where and "\0" not in where):
            raise ConfigError(
                file, f"ai.models.{name}", f"expected a model folder (a path), got {_show(where)}"
            )
        # hf:org/name is looked up in the hub's cache where the model loads.
        models[name] = where if where.startswith("hf:") else str((file.parent / where).resolve())
    ai["models"] = models
    pools: dict[str, dict[str, object]] = {}
    fields = {key: _AI_FIELDS[key] for key in POOL_KEYS}
    for name, table in ai.get("pools", {}).items():
        if name not in models and name not in EMBEDDING_MODELS:
            served = sorted({*EMBEDDING_MODELS, *models})
            raise ConfigError(
                file,
                f"ai.pools.{name}",
                "not an embedding model this config serves (pools are for the models run"
                f" here: {', '.join(served)})",
            )
        pools[name] = _read_table(file, f"ai.pools.{name}", table, fields)
    ai["pools"] = pools
    if "text" in ai:
        text = _read_table(file, "ai.text", ai["text"], _AI_TEXT_FIELDS)
        for name, upstream in text.get("models", {}).items():
            if not (isinstance(upstream, str) and upstream):
                raise ConfigError(
                    file,
                    f"ai.text.models.{name}",
                    f"expected the upstream's model name (a string), got {_show(upstream)}",
                )
            if name in models:
                raise ConfigError(
                    file, f"ai.text.models.{name}", "the name is an embedding model in [ai.models]"
                )
        ai["text"] = text
    return ai


def _plain_value(value: object, depth: int = 0) -> bool:
    """A var's value: a string, number or bool, or lists and tables of them (JSON-shaped)."""
    if depth > 32:
        return False
    if isinstance(value, str | bool | int):
        return "\0" not in value if isinstance(value, str) else True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(_plain_value(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_value(v, depth + 1) for k, v in value.items())
    return False


def _read_vars(file: Path, data: object) -> dict[str, object]:
    """``[vars]``: names usable as ``env`` attributes, JSON-shaped values."""
    if not isinstance(data, dict):
        raise ConfigError(file, "vars", f"expected a table, got {_show(data)}")
    for name, value in data.items():
        if not (isinstance(name, str) and _VAR_NAME.fullmatch(name)):
            raise ConfigError(
                file, f"vars.{name}", f"a var's name must match ^{_VAR_NAME.pattern}$"
            )
        if not _plain_value(value):
            raise ConfigError(
                file,
                f"vars.{name}",
                f"expected a string, number, boolean, or a list or table of them, got"
                f" {_show(value)}",
            )
    return dict(data)


_SECRETS_FIELDS = {
    "required": _Field("an array of secret names", lambda v: v if isinstance(v, list) else None)
}


def _read_required_secrets(path: Path, data: object) -> tuple[str, ...]:
    """``[secrets] required``: names usable as ``env`` attributes, each once."""
    table = _read_table(path, "secrets", data, _SECRETS_FIELDS)
    names = table.get("required", [])
    for name in names:
        if not isinstance(name, str) or not _VAR_NAME.fullmatch(name):
            raise ConfigError(
                path,
                "secrets.required",
                f"a secret's name must match ^{_VAR_NAME.pattern}$, got {_show(name)}",
            )
    if len(set(names)) != len(names):
        raise ConfigError(path, "secrets.required", "a name appears twice")
    return tuple(names)


def resolve_secrets(
    path: Path,
    required: Sequence[str],
    from_file: Mapping[str, str] | None,
    environ: Mapping[str, str] | None,
    *,
    dev: bool,
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The secrets on ``env``, and the required ones found nowhere, as wrangler has them.

    - With no ``required`` list: in dev, every ``NAME=value`` of ``.dev.vars`` (``from_file``);
      under ``raydo serve``, none (dev files are never read there).
    - With one: only those names, each from ``.dev.vars`` in dev, else from the environment
      (``environ``, ``os.environ`` when None); other keys of the file are left out. A name
      found nowhere is listed for dev to warn of, and under serve is a :class:`ConfigError`
      naming every missing one: the process's environment is where production secrets are
      given (a unit's ``EnvironmentFile``, the orchestrator's secret store).
    """
    file_values = dict(from_file or {}) if dev else {}
    if not required:
        return file_values, ()
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in required:
        value = file_values.get(name, env.get(name))
        if value is None:
            missing.append(name)
        else:
            found[name] = value
    if missing and not dev:
        raise ConfigError(
            path,
            "secrets.required",
            f"not set in the environment of raydo serve: {', '.join(missing)} (secrets never"
            " come from .dev.vars or .env outside raydo dev)",
        )
    return found, tuple(missing)


def load_config(path_or_dir: str | os.PathLike[str], *, dev_vars: bool = True) -> AppConfig:
    """Load and check ``raydo.toml``, given the file or its folder; raise :class:`ConfigError`.

    A folder without ``raydo.toml`` but with ``wrangler.jsonc``, ``wrangler.json`` or
    ``wrangler.toml`` (or one of those files given) is loaded by :mod:`.wrangler_config`,
    onto the same :class:`AppConfig`. ``dev_vars`` says whether this is dev (``raydo dev``,
    tests): only then are ``.dev.vars`` / ``.env`` beside the file read for secrets, as
    wrangler reads them in dev only; see :func:`resolve_secrets`.
    """
    given = Path(path_or_dir)
    wrangler = wrangler_config.find(given)
    if wrangler is not None:
        return _load_wrangler(wrangler, dev_vars=dev_vars)
    path = _locate(given)
    data = _parse(path, read_text(path))
    from_file = wrangler_config.read_dev_vars(path.parent)[1] if dev_vars else None
    return config_from_data(path, data, secrets=from_file, dev=dev_vars)


def _load_wrangler(path: Path, *, dev_vars: bool) -> AppConfig:
    """A wrangler file mapped onto raydo.toml's shape, then checked as one; an error of those
    checks gets the line of its key in the wrangler file."""
    mapped = wrangler_config.load_wrangler(path, dev_vars=dev_vars)
    try:
        return config_from_data(
            path,
            mapped.data,
            import_root=mapped.import_root,
            secrets=mapped.secrets,
            ignored=mapped.ignored,
            class_migrations=mapped.class_migrations,
            dev=dev_vars,
        )
    except ConfigError as e:
        if e.line is not None or not e.key:
            raise
        raise ConfigError(
            path, e.key, e.reason, wrangler_config.line_of(mapped.text, e.key)
        ) from None


def config_from_data(
    path: Path,
    data: object,
    *,
    import_root: Path | None = None,
    secrets: Mapping[str, str] | None = None,
    ignored: tuple[str, ...] = (),
    class_migrations: tuple[dict[str, object], ...] = (),
    environ: Mapping[str, str] | None = None,
    dev: bool = True,
) -> AppConfig:
    """Check a config already parsed into raydo's shape (``raydo.toml``'s keys) and build it;
    ``path`` is the file the errors name. ``secrets`` are those a ``.dev.vars`` file gave,
    ``environ`` the environment required secrets are read from (``os.environ`` when None),
    ``dev`` whether this is ``raydo dev`` (see :func:`resolve_secrets`)."""
    top = _read_table(path, "", data, _TOP_FIELDS)

    durable = _read_table(
        path, "durable_objects", top.get("durable_objects", {}), _DURABLE_OBJECTS_FIELDS
    )
    bindings = [
        (where, ObjectBinding(**values))
        for where, values in _read_array(
            path,
            "durable_objects.bindings",
            durable.get("bindings", []),
            _OBJECT_BINDING_FIELDS,
        )
    ]
    limits = replace(
        DEFAULT_LIMITS,
        **_read_table(path, "limits", top.get("limits", {}), _LIMIT_FIELDS),
    )
    d1 = _read_platform(path, "d1_databases", top.get("d1_databases", []), _D1_FIELDS, _D1_DEFAULTS)
    r2 = _read_platform(path, "r2_buckets", top.get("r2_buckets", []), _R2_FIELDS, _R2_DEFAULTS)
    _check_buckets(path, r2)
    kv = _read_platform(
        path, "kv_namespaces", top.get("kv_namespaces", []), _KV_FIELDS, _KV_DEFAULTS
    )
    queues = _read_table(path, "queues", top.get("queues", {}), _QUEUES_FIELDS)
    indexes = _read_platform(path, "vectorize", top.get("vectorize", []), _VECTORIZE_FIELDS)
    _check_indexes(path, indexes)
    producers = _read_platform(
        path, "queues.producers", queues.get("producers", []), _PRODUCER_FIELDS
    )
    consumers = _read_platform(
        path,
        "queues.consumers",
        queues.get("consumers", []),
        _CONSUMER_FIELDS,
        _CONSUMER_DEFAULTS,
    )

    plain = _read_vars(path, top.get("vars", {}))
    required = _read_required_secrets(path, top.get("secrets", {}))
    secrets, missing = resolve_secrets(path, required, secrets, environ, dev=dev)
    triggers = _read_table(path, "triggers", top.get("triggers", {}), _TRIGGERS_FIELDS)
    crons = triggers.get("crons", [])
    if len(set(crons)) != len(crons):
        raise ConfigError(path, "triggers.crons", "an expression appears twice")
    assets = _read_assets(path, top["assets"]) if "assets" in top else None
    ai = _read_ai(path, top["ai"]) if "ai" in top else None
    _check_unique_bindings(
        path,
        [(f"{where}.name", b.name) for where, b in bindings]
        + ([("assets.binding", assets["binding"])] if assets and assets["binding"] else [])
        + [(f"{where}.binding", d["binding"]) for where, d in d1 + r2 + kv + producers + indexes]
        + ([("ai.binding", ai["binding"])] if ai else [])
        + [(f"vars.{name}", name) for name in plain]
        + [(f"secret {name}", name) for name in secrets or {}],
    )
    _check_consumers(path, consumers)
    replication = None
    if "replication" in top:
        options = _read_table(path, "replication", top["replication"], _REPLICATION_FIELDS)
        replication = ReplicationSettings.from_url(options.pop("url"), **options)

    root = path.parent
    return AppConfig(
        path=path,
        root=root,
        name=top["name"],
        main=top["main"],
        storage=(root / top.get("storage", DEFAULT_STORAGE)).resolve(),
        durability=top.get("durability", "normal"),
        durable_objects=tuple(b for _, b in bindings),
        limits=limits,
        d1_databases=tuple(d for _, d in d1),
        r2_buckets=tuple(d for _, d in r2),
        kv_namespaces=tuple(d for _, d in kv),
        queue_producers=tuple(d for _, d in producers),
        queue_consumers=tuple(d for _, d in consumers),
        vectorize=tuple(d for _, d in indexes),
        replication=replication,
        vars=plain,
        secrets=secrets,
        required_secrets=required,
        missing_secrets=missing,
        import_root=import_root,
        ignored=ignored,
        class_migrations=class_migrations,
        crons=tuple(crons),
        cron_handler=triggers.get("handler"),
        assets=assets,
        ai=ai,
    )
