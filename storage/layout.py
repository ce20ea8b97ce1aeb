"""Where an app's storage keeps what: the one place the layout on disk is said.

::

    <root>/<BINDING>/_alarms.sqlite          the binding's alarm index (table ``alarms``)
    <root>/<BINDING>/<id[:2]>/<id>.sqlite    one object's file, ``<id>`` its 64-hex id
    <root>/<BINDING>/<id[:2]>/.<id>.sqlite.<pid>.new   a new object's file being made
    <root>/<BINDING>/<id[:2]>/.<id>.<label>            a file the object's owner keeps aside

Inside an object's file, raydo's own tables are named ``_raydo_*`` (:data:`INTERNAL_PREFIX`):
its key-value pairs (:data:`KV_TABLE`), its metadata such as its name and alarm
(:data:`META_TABLE`) and its WebSockets (:data:`SOCKETS_TABLE`); every other table is the
object's own SQL. Hosts, the inspection commands, the test harness and the CLIs all find
files and tables through these names, so none of them can disagree about the layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

# The table names are the ones the storage core itself uses; this module is their public face.
from ._tables import COLUMNS, INTERNAL_PREFIX, KV_TABLE, META_TABLE, SOCKETS_TABLE

#: raydo's tables in an object's file, as opposed to the object's own.
RAYDO_TABLES = (KV_TABLE, META_TABLE, SOCKETS_TABLE)

#: The alarm index of a binding, beside its objects' folders, and its one table.
ALARM_INDEX_NAME = "_alarms.sqlite"
ALARM_INDEX_TABLE = "alarms"

_SUFFIX = ".sqlite"
_OBJECT_FILE = re.compile(r"[0-9a-f]{64}\.sqlite")
_PARTIAL_FILE = re.compile(r"\.([0-9a-f]{64})\.sqlite\.[0-9]+\.new")


def binding_folder(root: str | Path, binding: str) -> Path:
    """The folder holding every file of ``binding``'s objects."""
    return Path(root) / binding


def object_file(root: str | Path, binding: str, object_hex: str) -> Path:
    """The SQLite file of the object ``object_hex`` of ``binding`` (it may not exist yet):
    in a folder named by the id's first two hex digits, so no folder grows too large."""
    return binding_folder(root, binding) / object_hex[:2] / f"{object_hex}{_SUFFIX}"


def partial_object_file(final: Path, writer: int) -> Path:
    """Where process ``writer`` makes a new object's file before it takes its name
    (``final``, from :func:`object_file`) in one rename: the file is whole or absent."""
    return final.with_name(f".{final.name}.{writer}.new")


def partial_object_files(root: str | Path, binding: str) -> Iterator[tuple[str, Path]]:
    """``(object id, path)`` of every half-made object file of ``binding`` (see
    :func:`partial_object_file`): what a process that died while making one left."""
    for path in binding_folder(root, binding).glob("??/.*.new"):
        found = _PARTIAL_FILE.fullmatch(path.name)
        if found is not None and path.parent.name == found.group(1)[:2]:
            yield found.group(1), path


def aside_file(final: Path, label: str) -> Path:
    """A file the owner of an object keeps beside the object's file ``final`` (from
    :func:`object_file`), named by ``label`` (letters, digits, ``-`` and ``.``): a queue's
    journal of decisions, say. Hidden, so listings of objects never count it."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,100}", label):
        raise ValueError(f"not a label for a file beside an object: {label!r}")
    return final.with_name(f".{final.stem}.{label}")


def aside_files(final: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """``(label, path)`` of the files :func:`aside_file` made for the object ``final`` whose
    label starts with ``prefix``."""
    start = f".{final.stem}.{prefix}"
    for path in final.parent.glob(f".{final.stem}.*"):
        if path.name.startswith(start):
            yield path.name[len(final.stem) + 2 :], path


def alarm_index_file(root: str | Path, binding: str) -> Path:
    """The alarm index of ``binding``: which objects of which host have an alarm, and when."""
    return binding_folder(root, binding) / ALARM_INDEX_NAME


def object_hexes(root: str | Path, binding: str) -> Iterator[str]:
    """The ids of ``binding``'s objects that have a file, in no particular order.

    Only files where :func:`object_file` puts them count, so each id's file is
    ``object_file(root, binding, id)``: the WAL files beside them, the alarm index, a
    half-written ``raydo objects import`` and misplaced files do not.
    """
    for path in binding_folder(root, binding).glob(f"??/*{_SUFFIX}"):
        if _OBJECT_FILE.fullmatch(path.name) and path.parent.name == path.name[:2]:
            yield path.name[:64]


__all__ = [
    "ALARM_INDEX_NAME",
    "ALARM_INDEX_TABLE",
    "COLUMNS",
    "INTERNAL_PREFIX",
    "KV_TABLE",
    "META_TABLE",
    "RAYDO_TABLES",
    "SOCKETS_TABLE",
    "alarm_index_file",
    "aside_file",
    "aside_files",
    "binding_folder",
    "object_file",
    "object_hexes",
    "partial_object_file",
    "partial_object_files",
]
