"""A wrangler config's Durable Object ``migrations``, applied once each, at start.

Cloudflare keeps a class's objects under the class; raydo keeps them under the binding
(``<storage>/<BINDING>/``, and the binding's name is part of the ids' key). So:

- ``new_classes`` / ``new_sqlite_classes`` need nothing: every raydo object has its SQLite.
- ``renamed_classes`` ``{from, to}``: the binding that served ``from`` now names ``to``; its
  objects and their data stay where they are. The binding's name must stay the same (ids
  derive from it): a rename whose class moved to another binding is refused, naming both.
- ``deleted_classes``: the folder of the binding that last served the class is removed, with
  every object's file, alarm and socket index in it.

What was applied, and which binding served each class at the last start, is recorded in
``<storage>/_class_migrations.json`` (written whole, then renamed into place, under a
``flock`` so several gateway processes starting together apply each step once).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path

from raydo.storage.layout import binding_folder
from raydo.storage.owner_only import make_folders

from .config import CONFIG_NAME, AppConfig, ConfigError

RECORD_NAME = "_class_migrations.json"
_log = logging.getLogger("raydo.migrations")


class MigrationRefused(ConfigError):
    """A migration cannot be applied as the config asks (the message says why)."""


def record_file(config: AppConfig) -> Path:
    return config.storage / RECORD_NAME


def read_record(config: AppConfig) -> dict[str, object]:
    """``{"applied": [tags], "classes": {class: binding}}``; empty when never written."""
    try:
        data = json.loads(record_file(config).read_text())
    except FileNotFoundError:
        return {"applied": [], "classes": {}}
    except (OSError, ValueError) as e:
        raise MigrationRefused(
            record_file(config), "", f"cannot read the migrations record: {e}"
        ) from e
    if not isinstance(data, dict):
        raise MigrationRefused(record_file(config), "", "the migrations record is not an object")
    return data


def apply_class_migrations(config: AppConfig) -> list[str]:
    """Apply the steps not yet recorded, record the classes' bindings; return what was done
    (one line per step applied)."""
    if config.path.name == CONFIG_NAME:  # raydo.toml has no class migrations
        return []
    make_folders(config.storage)
    with open(config.storage / (RECORD_NAME + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = read_record(config)
        applied = [str(t) for t in _list(record.get("applied"))]
        raw = record.get("classes")
        classes = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        current = {b.class_name.partition(":")[2]: b.name for b in config.durable_objects}
        done: list[str] = []
        for step in config.class_migrations:
            tag = str(step["tag"])
            if tag in applied:
                continue
            for old, new in _pairs(step.get("renamed")):
                binding = current.get(new)
                if binding is None:
                    raise MigrationRefused(
                        config.path,
                        "migrations",
                        f"{tag}: class {old!r} is renamed to {new!r}, which no binding uses",
                    )
                before = classes.pop(old, binding)
                if before != binding:
                    raise MigrationRefused(
                        config.path,
                        "migrations",
                        f"{tag}: class {old!r} was served by binding {before}, its new name"
                        f" {new!r} by {binding}; raydo keeps objects under their binding"
                        f" (ids derive from its name): keep the binding {before}",
                    )
                classes[new] = binding
                done.append(f"{tag}: renamed {old} to {new} (binding {binding})")
            for cls in _list(step.get("deleted")):
                binding = classes.pop(str(cls), None)
                if binding is not None and binding not in current.values():
                    folder = binding_folder(config.storage, binding)
                    shutil.rmtree(folder, ignore_errors=True)
                    done.append(f"{tag}: deleted {cls} (removed {folder})")
                else:
                    done.append(f"{tag}: deleted {cls} (no data of it here)")
            applied.append(tag)
        classes.update(current)
        _write(record_file(config), {"applied": applied, "classes": classes})
    for line in done:
        _log.warning("class migration %s", line)
    return done


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _pairs(value: object) -> list[tuple[str, str]]:
    return [(str(p[0]), str(p[1])) for p in _list(value) if isinstance(p, list | tuple)]


def _write(path: Path, data: dict[str, object]) -> None:
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
