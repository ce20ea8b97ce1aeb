"""The Python dependencies an app declares, as ``raydo deploy`` ships them.

Wheels the app carries in its folder become Ray's ``py_modules``: uploaded once, installed on
each node into a folder of their own (``pip install --target``), nothing else copied. Every
other line goes to Ray's ``pip``, which installs it on each node, once per distinct list, into a
clone of the node's Python environment (tens of seconds and the environment's size on disk:
measured here, 24 s and 1.1 GB per node for this project's 1.3 GB virtualenv).

Read from ``requirements.txt`` at the app's root, else from ``pyproject.toml``'s ``[project]
dependencies``. Local files a requirements file names (a wheel, a package folder, another
requirements file, a ``--find-links`` folder) travel inside the app's folder, so their paths
are rewritten to Ray's copy of that folder on the node (``${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}``,
which pip expands in requirements files); a local path outside the folder would not exist on
other nodes, and is refused.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Where Ray puts its copy of the app's folder on a node; pip expands ``${...}`` in
#: requirements lines, and Ray sets this variable while it installs them.
NODE_FOLDER = "${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}"

# pip's options whose value is a path: ``-r other.txt``, ``-rother.txt``, ``--find-links=./w``.
_SHORT_PATH_OPTION = re.compile(r"^(-[rcef])\s*(\S.*)$")
_LONG_PATH_OPTION = re.compile(
    r"^(--requirement|--constraint|--editable|--find-links)(?:\s*=\s*|\s+)(\S.*)$"
)


@dataclass(frozen=True)
class AppDependencies:
    """What an app needs installed beside it on every node."""

    wheels: tuple[Path, ...] = ()
    """Wheel files inside the app's folder (Ray's ``py_modules``)."""
    pip: tuple[str, ...] = ()
    """Requirement lines for pip, local paths pointed at the node's copy of the folder."""


class DependencyError(ValueError):
    """The app's dependency list cannot be shipped as written (the reason names the file and
    line)."""


def app_dependencies(root: str | Path, *, left_out: Sequence[str] = ()) -> AppDependencies:
    """What the app at ``root`` declares (nothing when it has neither file), split into the
    wheels it carries and the lines for pip.

    ``left_out`` are the parts of the folder that do not travel (Ray's ``excludes``: a name
    anywhere, or ``/path`` from the top); a local file in one of them is refused."""
    folder = Path(root).resolve()
    requirements = folder / "requirements.txt"
    if requirements.is_file():
        lines = _requirements(folder, requirements)
        for line in lines:
            _check_travels(line, left_out)
        carried = [line for line in lines if _carried_wheel(line)]
        wheels = tuple(folder / line[len(NODE_FOLDER) + 1 :] for line in carried)
        for wheel in wheels:
            wheel_modules(wheel)  # a file that is no wheel fails here, not on every node
        return AppDependencies(
            wheels=wheels, pip=tuple(line for line in lines if line not in carried)
        )
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        return AppDependencies(pip=tuple(_pyproject(pyproject)))
    return AppDependencies()


def wheel_modules(wheel: Path) -> list[str]:
    """The top-level modules and packages a wheel installs (what a host can import once it
    is in place); :class:`DependencyError` when the file is not a wheel."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise DependencyError(f"{wheel.name} is not a wheel (a zip archive): {exc}") from None
    if not any(n.endswith(".dist-info/WHEEL") for n in names):
        raise DependencyError(f"{wheel.name} is not a wheel: it has no .dist-info/WHEEL")
    tops = set()
    for name in names:
        top = name.split("/", 1)[0]
        if top.endswith((".dist-info", ".data")):
            continue
        module = top[: -len(".py")] if top.endswith(".py") and "/" not in name else top
        if module.isidentifier():
            tops.add(module)
    return sorted(tops)


def content_named(wheel: Path, into: Path) -> Path:
    """A copy of ``wheel`` in ``into`` whose name carries a digest of its bytes, as the
    wheel's build tag (``name-1.0-0<digest>-py3-none-any.whl``).

    Ray addresses a wheel in ``py_modules`` by its file name alone, so a wheel rebuilt under
    the same name would not be shipped again: nodes would go on importing the old one."""
    parts = wheel.name[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise DependencyError(f"{wheel.name} is not a wheel's name (name-version-py-abi-platform)")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
    name, version, *tags = parts if len(parts) == 5 else [*parts[:2], *parts[3:]]
    copy = into / ("-".join([name, version, f"0{digest}", *tags]) + ".whl")
    shutil.copyfile(wheel, copy)
    return copy


def _carried_wheel(line: str) -> bool:
    return line.startswith(NODE_FOLDER + "/") and line.endswith(".whl")


def _requirements(folder: Path, path: Path, seen: tuple[Path, ...] = ()) -> list[str]:
    """The lines of ``path``, with the files it includes (``-r``) read in their place: pip
    reads an included file's relative paths from the including file's folder, so they are
    rewritten here, where that folder is known."""
    if path in seen:
        chain = " -> ".join(p.name for p in (*seen, path))
        raise DependencyError(f"requirements files include each other: {chain}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DependencyError(f"{path}: cannot be read ({exc})") from None
    lines: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path.relative_to(folder)}, line {number}"
        option = _SHORT_PATH_OPTION.match(line) or _LONG_PATH_OPTION.match(line)
        if option is not None and option.group(1) in ("-r", "--requirement"):
            included = _inside(folder, path.parent, option.group(2).strip(), where)
            lines.extend(_requirements(folder, included, (*seen, path)))
        else:
            lines.append(_rewrite(folder, path.parent, line, where))
    return lines


def _rewrite(folder: Path, here: Path, line: str, where: str) -> str:
    option = _SHORT_PATH_OPTION.match(line) or _LONG_PATH_OPTION.match(line)
    if option is not None:
        name, value = option.groups()
        if _is_url(value):
            return line
        return f"{name} {_on_node(folder, _inside(folder, here, value.strip(), where))}"
    if line.startswith("-"):
        return line  # --index-url, --pre, --extra-index-url ...: pip's options, as written
    if _looks_like_path(line):
        return _on_node(folder, _inside(folder, folder, line, where))
    return line


def _inside(folder: Path, here: Path, value: str, where: str) -> Path:
    """``value``, a path from a requirements file, resolved; it must be in the app's folder."""
    local = Path(value).expanduser()
    target = (local if local.is_absolute() else here / local).resolve()
    if not target.is_relative_to(folder):
        raise DependencyError(
            f"{where}: {value!r} is outside the app's folder, so it does not travel with the"
            " app to other nodes: put it inside the folder or publish it to a package index"
        )
    if not target.exists():
        raise DependencyError(f"{where}: {value!r} does not exist in the app's folder")
    return target


def _on_node(folder: Path, target: Path) -> str:
    relative = target.relative_to(folder).as_posix()
    return NODE_FOLDER if relative == "." else f"{NODE_FOLDER}/{relative}"


def _check_travels(line: str, left_out: Sequence[str]) -> None:
    at = line.find(NODE_FOLDER)
    if at < 0:
        return
    relative = line[at + len(NODE_FOLDER) :].lstrip("/")
    parts = relative.split("/")
    for pattern in left_out:
        top = pattern.startswith("/")
        name = pattern.strip("/")
        if (top and (relative == name or relative.startswith(name + "/"))) or (
            not top and name in parts
        ):
            raise DependencyError(
                f"requirements.txt names {relative!r}, in {pattern!r}, which raydo deploy"
                " leaves out of the app's package: move it elsewhere in the folder"
            )


def _is_url(value: str) -> bool:
    return "://" in value


def _looks_like_path(line: str) -> bool:
    # pip reads a line as a path when it starts like one or names an archive; a requirement
    # such as ``name @ https://...`` or ``name>=1`` is a specifier, passed as written.
    if _is_url(line) or " @ " in line or "@" in line.split(";", 1)[0]:
        return False
    if line.startswith((".", "/", "~")):
        return True
    return line.endswith((".whl", ".tar.gz", ".zip")) or "/" in line.split(";", 1)[0]


def _pyproject(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DependencyError(f"{path}: cannot be read ({exc})") from None
    project = data.get("project", {})
    if not isinstance(project, dict):
        raise DependencyError(f"{path}: [project] must be a table")
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise DependencyError(f"{path}: [project] dependencies must be a list of strings")
    return [d.strip() for d in dependencies if d.strip()]
