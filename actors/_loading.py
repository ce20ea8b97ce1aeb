"""Import an app's code by ``module:attribute`` from its folder.

Apps name their modules plainly (``app``, ``objects``, ``room``), so two apps started in one
process (tests, tools) would share ``sys.modules`` entries and silently get each other's code.
Before importing, every cached module that came from another app's folder and whose top-level
name this app's folder also defines is dropped, so that what the app's modules import in turn
is the app's own too; modules from anywhere else (the standard library, packages) never are.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from ._object import DurableObject

# Which app folder each module an app import brought in came from (see import_from_app).
_app_modules: dict[str, Path] = {}
_RAYDO_PACKAGES = frozenset({"raydo"})


def import_from_app(root: str, reference: str) -> Any:
    """``module:attribute`` imported with ``root`` first on the import path."""
    folder = Path(root).resolve()
    module_name, _, attribute = reference.partition(":")
    _drop_other_apps_modules(folder)
    if sys.path[:1] != [str(folder)]:
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
        sys.path.insert(0, str(folder))
    before = set(sys.modules)
    try:
        module = importlib.import_module(module_name)
    finally:
        _record_app_modules(folder, before)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise MissingAttribute(f"module {module_name!r} has no {attribute!r}") from None


def _drop_other_apps_modules(folder: Path) -> None:
    """Drop every cached module that an import of another app brought in and whose top-level
    name this folder also defines: not only the module asked for, but whatever it imported in
    turn (a ``worker.py`` that imports ``objects`` must get this app's ``objects``).

    Only modules recorded as another app's go, never a module the process imported some other
    way (a test suite's own ``tests`` package, say), whatever folder it lies in."""
    names = _top_level_names(folder)
    colliding: dict[Path, list[str]] = {}
    for name, owner in _app_modules.items():
        if owner != folder and name.split(".")[0] in names:
            colliding.setdefault(owner, []).append(name)
    for owner, modules in colliding.items():
        # A copy of that app, byte for byte in every module it shares with this one, keeps
        # them: the loaded modules serve both (importing them again would define their
        # classes twice, which registries such as SQLAlchemy's refuse). One module that
        # differs, and all of them are this folder's own again: what they import in turn
        # must be too.
        if all(_same_file_here(sys.modules.get(name), owner, folder) for name in modules):
            continue
        for name in modules:
            sys.modules.pop(name, None)
            del _app_modules[name]


def _same_file_here(module: object, owner: Path, folder: Path) -> bool:
    """Whether ``module``, loaded from the app folder ``owner``, has the very same bytes at
    the same place in ``folder`` (copies of one app, as test suites make them)."""
    origin = getattr(module, "__file__", None)
    if not isinstance(origin, str):
        return False
    loaded = Path(origin).resolve()
    here = folder / loaded.relative_to(owner)
    try:
        return here.read_bytes() == loaded.read_bytes()
    except (OSError, ValueError):
        return False


def _record_app_modules(folder: Path, before: set[str]) -> None:
    """Remember which of the modules loaded since ``before`` are this app's own files."""
    for name in set(sys.modules) - before:
        if name.split(".")[0] in _RAYDO_PACKAGES:
            continue
        origin = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(origin, str) and Path(origin).resolve().is_relative_to(folder):
            _app_modules[name] = folder


def _top_level_names(folder: Path) -> frozenset[str]:
    """The module and package names importable from the top of ``folder``."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return frozenset()
    names = set()
    for entry in entries:
        if entry.suffix == ".py" and entry.is_file():
            names.add(entry.stem)
        elif entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
    return frozenset(names)


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
            _app_modules.pop(name, None)
            dropped.append(name)
    importlib.invalidate_caches()
    return dropped


_NOT_CODE = frozenset({"__pycache__", "site-packages", "node_modules"})
# Besides its .py files, what decides the code an app runs: the dependencies it declares (and
# wheels it carries), which ``raydo deploy`` installs with it.
_DEPENDENCY_FILES = frozenset({"requirements.txt", "pyproject.toml"})


def _is_code(name: str) -> bool:
    return name.endswith((".py", ".whl")) or name in _DEPENDENCY_FILES


def code_version(root: str, *, skip: str | None = None) -> str:
    """A digest of the app's Python files (and the dependencies it declares:
    ``requirements.txt``, ``pyproject.toml``, wheels) as they are on disk now: their paths
    under ``root`` and their bytes. Hidden folders, caches and ``skip`` (the storage folder, whose
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
        for name in sorted(f for f in files if _is_code(f)):
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
