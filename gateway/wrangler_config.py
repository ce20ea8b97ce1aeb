"""Loading wrangler's config files (``wrangler.jsonc``, ``wrangler.json``, ``wrangler.toml``)
onto the one :class:`~.config.AppConfig` that ``raydo.toml`` loads onto.

With no ``raydo.toml`` in an app's folder, :func:`find` picks the first of those files there;
:func:`load_wrangler` then, in order:

1. reads the file (at most 1 MiB of UTF-8, as ``raydo.toml``) and parses it: TOML with
   :mod:`tomllib`; JSON with comments (``//``, ``/* */``) and trailing commas by blanking
   those out in place (so every offset, and every line, stays where it was) and handing the
   rest to :mod:`json`, refusing duplicate keys and nesting deeper than 64;
2. maps what raydo supports onto ``raydo.toml``'s shape: ``main = "src/entry.py"`` becomes
   the module ``entry`` imported from ``src`` (its ``Default`` class when the file defines
   one, else its ``app``), a binding's ``class_name`` a class of that module, ``vars`` plain
   values on ``env``; ``.dev.vars`` (else ``.env``) beside the file gives secrets in dev;
   ``migrations`` become class migrations (:mod:`.class_migrations`);
3. collects the keys raydo accepts without using (``compatibility_date``, ``routes``,
   ``database_id`` ...) into ``AppConfig.ignored``, which ``raydo dev`` and ``raydo serve``
   list once at start;
4. hands back a :class:`WranglerConfig`, which :func:`.config.load_config` checks with the
   same code as ``raydo.toml``; any error names the file, the line of the key at fault and
   the key.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raydo.bindings.ai import POOL_KEYS

from .config_files import CONFIG_NAME, ConfigError, read_text

WRANGLER_NAMES = ("wrangler.jsonc", "wrangler.json", "wrangler.toml")
DEV_VARS_NAMES = (".dev.vars", ".env")
MAX_DEPTH = 64

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Top-level keys raydo reads, and those it accepts without using (listed at start).
_TOP_USED = {
    "name",
    "main",
    "vars",
    "durable_objects",
    "migrations",
    "d1_databases",
    "kv_namespaces",
    "r2_buckets",
    "queues",
    "triggers",
    "assets",
    "secrets",
    "vectorize",
    "ai",
}
_TOP_SILENT = {"$schema", "compatibility_date", "compatibility_flags"}
#: Per entry: the keys raydo maps (wrangler's name -> raydo.toml's), the rest being ignored.
_ENTRY_KEYS: dict[str, dict[str, str]] = {
    "durable_objects.bindings": {"name": "name", "class_name": "class_name"},
    "d1_databases": {
        "binding": "binding",
        "database_name": "database_name",
        "migrations_dir": "migrations_dir",
    },
    "kv_namespaces": {"binding": "binding", "id": "id"},
    "r2_buckets": {"binding": "binding", "bucket_name": "bucket_name"},
    # wrangler keeps an index's shape with the index (``wrangler vectorize create``); raydo
    # keeps it in the config, so the entry may carry raydo's shape keys too.
    "vectorize": {
        "binding": "binding",
        "index_name": "index_name",
        "dimensions": "dimensions",
        "metric": "metric",
        "preset": "preset",
    },
    "queues.producers": {"binding": "binding", "queue": "queue"},
    "queues.consumers": {
        "queue": "queue",
        "max_batch_size": "max_batch_size",
        "max_batch_timeout": "max_batch_timeout",
        "max_retries": "max_retries",
        "dead_letter_queue": "dead_letter_queue",
        "retry_delay": "retry_delay",
    },
}
#: wrangler's ``ai`` names the binding only (the models are Cloudflare's); raydo runs the
#: models itself, so the table may carry raydo's ``[ai]`` keys too.
_AI_KEYS = {"binding", "models_dir", "models", "pools", "text", *POOL_KEYS}
_ASSETS_KEYS = {
    "directory",
    "binding",
    "run_worker_first",
    "html_handling",
    "not_found_handling",
}
_MIGRATION_KEYS = {
    "tag",
    "new_classes",
    "new_sqlite_classes",
    "renamed_classes",
    "deleted_classes",
}


def find(given: Path) -> Path | None:
    """The wrangler file to load for ``given`` (a folder or a file), or None for raydo.toml."""
    path = given.resolve()
    if path.is_file():
        return path if path.name in WRANGLER_NAMES else None
    if not path.is_dir() or (path / CONFIG_NAME).exists():
        return None
    for name in WRANGLER_NAMES:
        if (path / name).is_file():
            return path / name
    return None


# Parsing.


def strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas made plain JSON of the same length: comments
    and trailing commas become spaces (newlines kept), so offsets and lines stay true."""
    out = list(text)
    n = len(text)
    i = 0
    while i < n:  # comments
        c = text[i]
        if c == '"':
            i = _string_end(text, i)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            stop = n if end < 0 else end + 2
            for j in range(i, stop):
                if out[j] != "\n":
                    out[j] = " "
            i = stop
        else:
            i += 1
    plain = "".join(out)
    i = 0
    while i < n:  # trailing commas, now that comments are blanks
        c = plain[i]
        if c == '"':
            i = _string_end(plain, i)
            continue
        if c == ",":
            j = i + 1
            while j < n and plain[j] in " \t\r\n":
                j += 1
            if j < n and plain[j] in "]}":
                out[i] = " "
            i = j
            continue
        i += 1
    return "".join(out)


def _string_end(text: str, i: int) -> int:
    """The offset just past the JSON string opening at ``i`` (the end of text if unclosed)."""
    n = len(text)
    i += 1
    while i < n and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _depth(text: str) -> int:
    """The deepest nesting of brackets outside strings (comments are blank by now)."""
    deepest = depth = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def parse(path: Path, text: str) -> Any:
    """The file's data (JSONC or TOML by its name); :class:`ConfigError` with the line."""
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(path, "", f"invalid TOML: {e}") from e
    plain = strip_jsonc(text)
    if _depth(plain) > MAX_DEPTH:
        raise ConfigError(path, "", f"nested deeper than {MAX_DEPTH} levels; refusing it")
    try:
        return json.loads(plain, object_pairs_hook=_no_duplicates)
    except _Duplicate as e:
        raise ConfigError(
            path, e.key, "the key appears twice in one object", line_of(text, e.key)
        ) from None
    except json.JSONDecodeError as e:
        raise ConfigError(path, "", f"invalid JSON: {e.msg} (column {e.colno})", e.lineno) from e


def line_of(text: str, key: str) -> int | None:
    """The line where the dotted ``key`` (``durable_objects.bindings[1].class_name``) is
    written, found by walking its parts through the text; None when it cannot be found."""
    offset = 0
    found = False
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", key)
    for k, part in enumerate(parts):
        if part.startswith("["):
            # The i-th element: step over i occurrences of the next key's name.
            nxt = next((p for p in parts[k + 1 :] if not p.startswith("[")), None)
            if nxt is None:
                continue
            for _ in range(int(part[1:-1])):
                match = _key_pattern(nxt).search(text, offset)
                if match is None:
                    break
                offset = match.end()
            continue
        match = _key_pattern(part).search(text, offset)
        if match is None:
            break
        offset, found = match.start(), True
        offset = match.end() if k < len(parts) - 1 else offset
    return _line_at(text, offset) if found else None


def _key_pattern(name: str) -> re.Pattern[str]:
    quoted = re.escape(json.dumps(name))
    bare = re.escape(name)
    return re.compile(rf"{quoted}\s*[:=]|(?<![\w-]){bare}\s*=|[\[.]{bare}[\].]")


# Secrets: .dev.vars / .env.

_DOTENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")


def read_dev_vars(folder: Path) -> tuple[Path | None, dict[str, str]]:
    """Secrets for dev from ``.dev.vars``, or when there is none from ``.env`` (as wrangler):
    ``NAME=value`` lines, optionally quoted, ``#`` comments; bad lines name file and line."""
    for name in DEV_VARS_NAMES:
        path = folder / name
        if path.is_file():
            return path, _parse_dotenv(path, read_text(path))
    return None, {}


def _parse_dotenv(path: Path, text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _DOTENV_LINE.fullmatch(line)
        if match is None:
            raise ConfigError(
                path, "", "expected NAME=value (NAME a letter or _, then those and digits)", number
            )
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
            if match.group(2)[0] == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if "\0" in value:
            raise ConfigError(path, name, "a value may not hold NUL", number)
        values[name] = value
    return values


# Mapping wrangler's shape onto raydo.toml's.


class _Mapper:
    def __init__(self, path: Path, text: str, data: Any) -> None:
        self.path = path
        self.text = text
        self.data = data
        self.ignored: list[str] = []

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.path, key, reason, line_of(self.text, key))

    def table(self, key: str, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table (an object), got {_show(value)}")
        return value

    def array(self, key: str, value: object) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected an array, got {_show(value)}")
        return value

    def main(self) -> tuple[str, Path]:
        """``main``: a ``.py`` file in the app's folder -> (``module:attribute``, its folder)."""
        value = self.data.get("main")
        if value is None:
            raise self.fail("main", "missing required key 'main' (the Worker's .py file)")
        if not isinstance(value, str) or not value.endswith(".py") or "\0" in value:
            raise self.fail(
                "main",
                f"expected the path of a Python file (ending in .py), got {_show(value)};"
                " raydo runs Python Workers only",
            )
        root = self.path.parent.resolve()
        file = (root / value).resolve()
        if not file.is_relative_to(root):
            raise self.fail("main", f"{value!r} is outside the app's folder {root}")
        if not file.is_file():
            raise self.fail("main", f"no such file: {file}")
        module = file.stem
        if not _IDENTIFIER.fullmatch(module):
            raise self.fail("main", f"{file.name}: the file's name must be a module name")
        return f"{module}:{_entry_attribute(file)}", file.parent

    def entries(
        self, key: str, items: object, module: str, out: dict[str, Any], out_key: str
    ) -> None:
        """An array of binding tables: mapped keys kept, the rest listed as ignored."""
        mapped = _ENTRY_KEYS[key]
        result = []
        for i, item in enumerate(self.array(key, items)):
            where = f"{key}[{i}]"
            entry = self.table(where, item)
            kept: dict[str, Any] = {}
            for name, value in entry.items():
                if name in mapped:
                    kept[mapped[name]] = value
                else:
                    self.ignore(f"{where}.{name}")
            if key == "durable_objects.bindings":
                if "script_name" in entry:
                    raise self.fail(
                        f"{where}.script_name",
                        "a class of another Worker: raydo serves one Worker's own classes;"
                        " remove script_name and give the class to this Worker",
                    )
                cls = kept.get("class_name")
                if isinstance(cls, str) and ":" not in cls:
                    kept["class_name"] = f"{module}:{cls}"
            result.append(kept)
        parent, _, leaf = out_key.rpartition(".")
        (out.setdefault(parent, {}) if parent else out)[leaf] = result

    def ignore(self, key: str) -> None:
        self.ignored.append(key)

    def migrations(self, known_classes: set[str]) -> tuple[dict[str, object], ...]:
        """``migrations``: tags unique; renames and deletes kept in order for
        :mod:`.class_migrations`. New classes need nothing (every object has SQLite)."""
        items = self.array("migrations", self.data.get("migrations", []))
        tags: set[str] = set()
        result: list[dict[str, object]] = []
        for i, item in enumerate(items):
            where = f"migrations[{i}]"
            step = self.table(where, item)
            for name in step:
                if name not in _MIGRATION_KEYS:
                    if name == "transferred_classes":
                        raise self.fail(
                            f"{where}.{name}",
                            "classes move between Workers on Cloudflare only; raydo serves"
                            " one Worker",
                        )
                    self.ignore(f"{where}.{name}")
            tag = step.get("tag")
            if not isinstance(tag, str) or not tag or "\0" in tag or len(tag) > 128:
                raise self.fail(f"{where}.tag", f"expected a non-empty tag, got {_show(tag)}")
            if tag in tags:
                raise self.fail(f"{where}.tag", f"tag {tag!r} is used twice")
            tags.add(tag)
            for name in ("new_classes", "new_sqlite_classes", "deleted_classes"):
                for k, cls in enumerate(self.array(f"{where}.{name}", step.get(name, []))):
                    if not (isinstance(cls, str) and _IDENTIFIER.fullmatch(cls)):
                        raise self.fail(
                            f"{where}.{name}[{k}]", f"expected a class name, got {_show(cls)}"
                        )
            renamed = []
            for k, pair in enumerate(
                self.array(f"{where}.renamed_classes", step.get("renamed_classes", []))
            ):
                pair_key = f"{where}.renamed_classes[{k}]"
                table = self.table(pair_key, pair)
                if set(table) != {"from", "to"} or not all(
                    isinstance(table[s], str) and _IDENTIFIER.fullmatch(table[s])
                    for s in ("from", "to")
                ):
                    raise self.fail(
                        pair_key, f'expected {{"from": "Old", "to": "New"}}, got {_show(table)}'
                    )
                renamed.append((table["from"], table["to"]))
            deleted = list(step.get("deleted_classes", []))
            for cls in deleted:
                if cls in known_classes:
                    raise self.fail(
                        f"{where}.deleted_classes",
                        f"class {cls!r} is deleted, but a binding still uses it",
                    )
            result.append({"tag": tag, "renamed": renamed, "deleted": deleted})
        return tuple(result)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _entry_attribute(file: Path) -> str:
    """``Default`` when the module defines it at top level (a WorkerEntrypoint), else ``app``
    (an ASGI app, raydo's own style). Read without importing; an unreadable file is left to
    the import to explain."""
    try:
        tree = ast.parse(file.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return "app"
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Default":
            return "Default"
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "Default" for t in node.targets
        ):
            return "Default"
        if isinstance(node, ast.ImportFrom) and any(
            (a.asname or a.name) == "Default" for a in node.names
        ):
            return "Default"
    return "app"


@dataclass(frozen=True)
class WranglerConfig:
    """A wrangler file in ``raydo.toml``'s shape (``data``), and what raydo.toml has no key for."""

    text: str
    data: dict[str, Any]
    import_root: Path
    secrets: dict[str, str] = field(repr=False)
    ignored: tuple[str, ...]
    class_migrations: tuple[dict[str, object], ...]


def load_wrangler(path: Path, *, dev_vars: bool = True) -> WranglerConfig:
    """Read and map a wrangler file (see the module); the checks of values are the caller's."""
    text = read_text(path)
    data = parse(path, text)
    mapper = _Mapper(path, text, data)
    top = mapper.table("", data)
    for name in top:
        if name not in _TOP_USED and name not in _TOP_SILENT:
            mapper.ignore(name)
    main, import_root = mapper.main()
    module = main.partition(":")[0]
    out: dict[str, Any] = {"main": main}
    if "name" in top:
        out["name"] = top["name"]
    else:
        raise mapper.fail("name", "missing required key 'name' (the Worker's name)")
    if "vars" in top:
        out["vars"] = top["vars"]
    durable = mapper.table("durable_objects", top.get("durable_objects", {}))
    for name in durable:
        if name != "bindings":
            mapper.ignore(f"durable_objects.{name}")
    if "bindings" in durable:
        mapper.entries(
            "durable_objects.bindings", durable["bindings"], module, out, "durable_objects.bindings"
        )
    for key in ("d1_databases", "kv_namespaces", "r2_buckets", "vectorize"):
        if key in top:
            mapper.entries(key, top[key], module, out, key)
    for i, index in enumerate(out.get("vectorize", [])):
        if "dimensions" not in index and "preset" not in index:
            raise mapper.fail(
                f"vectorize[{i}]",
                "an index needs its shape: wrangler keeps it with the index (wrangler"
                ' vectorize create), raydo in the config: add "dimensions" and "metric" (or a'
                ' "preset", e.g. "@cf/baai/bge-base-en-v1.5") to this entry',
            )
    if "queues" in top:
        queues = mapper.table("queues", top["queues"])
        out["queues"] = {}
        for name in queues:
            if name in ("producers", "consumers"):
                mapper.entries(f"queues.{name}", queues[name], module, out["queues"], name)
            else:
                mapper.ignore(f"queues.{name}")
    if "triggers" in top:
        triggers = mapper.table("triggers", top["triggers"])
        for name in triggers:
            if name != "crons":
                mapper.ignore(f"triggers.{name}")
        if "crons" in triggers:
            out["triggers"] = {"crons": triggers["crons"]}
    if "ai" in top:
        ai = mapper.table("ai", top["ai"])
        out["ai"] = {}
        for name in ai:
            if name in _AI_KEYS:
                out["ai"][name] = ai[name]
            else:
                mapper.ignore(f"ai.{name}")
    if "assets" in top:
        assets = mapper.table("assets", top["assets"])
        out["assets"] = {}
        for name in assets:
            if name in _ASSETS_KEYS:
                out["assets"][name] = assets[name]
            else:
                mapper.ignore(f"assets.{name}")
    if "secrets" in top:
        declared = mapper.table("secrets", top["secrets"])
        for name in declared:
            if name != "required":
                mapper.ignore(f"secrets.{name}")
        if "required" in declared:
            out["secrets"] = {"required": declared["required"]}
    classes = {
        str(b.get("class_name", "")).partition(":")[2]
        for b in out.get("durable_objects", {}).get("bindings", [])
    }
    migrations = mapper.migrations(classes)
    secrets: dict[str, str] = {}
    if dev_vars:
        _, secrets = read_dev_vars(path.parent)
    return WranglerConfig(
        text=text,
        data=out,
        import_root=import_root,
        secrets=secrets,
        ignored=tuple(mapper.ignored),
        class_migrations=migrations,
    )
