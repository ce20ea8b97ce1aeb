"""Import an app's code by ``module:attribute`` from its folder.

Apps name their modules plainly (``app``, ``objects``, ``room``), so two apps started in one
process (tests, tools) would share ``sys.modules`` entries and silently get each other's code.
Before importing, a cached module of the same top-level name that came from another app's
folder is dropped; modules from anywhere else (the standard library, packages) never are.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from ._object import DurableObject

_app_roots: set[Path] = set()
_RAYDO_PACKAGES = frozenset({"raydo"})


def import_from_app(root: str, reference: str) -> Any:
    """``module:attribute`` imported with ``root`` first on the import path."""
    folder = Path(root).resolve()
    module_name, _, attribute = reference.partition(":")
    top = module_name.split(".")[0]
    # raydo's own packages are never an app's: an app folder that contains them (a checkout
    # used as an app root) must not make them load twice, with two sets of classes.
    cached = None if top in _RAYDO_PACKAGES else sys.modules.get(top)
    origin = getattr(cached, "__file__", None)
    if origin is not None:
        home = Path(origin).resolve().parent
        from_other_app = any(home.is_relative_to(r) for r in _app_roots if r != folder)
        if from_other_app and not home.is_relative_to(folder):
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                del sys.modules[name]
    _app_roots.add(folder)
    if sys.path[:1] != [str(folder)]:
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
        sys.path.insert(0, str(folder))
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise MissingAttribute(f"module {module_name!r} has no {attribute!r}") from None


def forget_app_modules(root: str) -> list[str]:
    """Drop from ``sys.modules`` every module loaded from the app folder ``root``, so the next
    import reads the app's files again (hot reload); the names dropped.

    raydo's own packages and anything installed (a ``site-packages`` inside the folder, say)
    stay: only the app's own modules are read again.
    """
    # The app's modules were imported from the resolved folder (see import_from_app).
    prefix = str(Path(root).resolve()) + os.sep
    dropped: list[str] = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in _RAYDO_PACKAGES:
            continue
        origin = getattr(module, "__file__", None)
        if not isinstance(origin, str) or not origin.startswith(prefix):
            continue
        if "site-packages" not in Path(origin).parts:
            del sys.modules[name]
            dropped.append(name)
    importlib.invalidate_caches()
    return dropped


_NOT_CODE = frozenset({"__pycache__", "site-packages", "node_modules"})


def code_version(root: str, *, skip: str | None = None) -> str:
    """A digest of the app's Python files as they are on disk now: their paths under
    ``root`` and their bytes. Hidden folders, caches and ``skip`` (the storage folder, whose
    object files are many and never code) are not read. Two processes that loaded the app
    from the same files agree; any edit of a ``.py`` file changes it."""
    folder = Path(root).resolve()
    skipped = Path(skip).resolve() if skip is not None else None
    digest = hashlib.sha256()
    for here, dirs, files in os.walk(folder):
        where = Path(here)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in _NOT_CODE and where / d != skipped
        )
        for name in sorted(f for f in files if f.endswith(".py")):
            path = where / name
            try:
                data = path.read_bytes()
            except OSError:  # gone since it was listed
                continue
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


class MissingAttribute(LookupError):
    """The module imported, but does not define the attribute asked for."""


def load_class(app_root: str, class_name: str) -> type[DurableObject]:
    """Import ``module:Class`` from the app's folder; it must be a DurableObject subclass."""
    try:
        cls = import_from_app(app_root, class_name)
    except MissingAttribute:
        cls = None
    if not isinstance(cls, type) or not issubclass(cls, DurableObject):
        raise TypeError(f"{class_name} is not a DurableObject subclass")
    return cls
