"""The layering DESIGN.md promises, checked on the source: ``gateway -> bindings -> actors ->
storage``, no import cycles, and no package reaching into another's private modules. Above
them all sits the Cloudflare Python Workers SDK (the top-level ``workers`` package and its
``asgi``, ``wsgi`` and ``js`` spellings): it may import raydo's public modules, and nothing of
raydo may import it.

The import graph is read with :mod:`ast` from every module of ``raydo``, taking every import
statement wherever it stands (module level, inside functions, under ``TYPE_CHECKING``): an
import that only runs later still ties the two modules together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "raydo"
#: The packages from the bottom up: each may import only those before it (and itself).
LAYERS = ("storage", "actors", "bindings", "gateway")
#: The face of everything (``raydo/__init__``) sits above every package.
TOP = len(LAYERS)
#: The platform's SDK, top-level packages of their own, above raydo's face.
SDK = ("workers", "asgi", "wsgi", "js")
SDK_LAYER = TOP + 1

Graph = dict[str, set[str]]


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _sources() -> dict[str, Path]:
    # rglob does not follow the packages' symlinks (raydo/actors -> ../actors): walk them.
    found: dict[str, Path] = {}
    for root in [ROOT, *(REPO / name for name in SDK)]:
        stack = [root]
        while stack:
            folder = stack.pop()
            for path in folder.iterdir():
                if path.is_dir() and (path / "__init__.py").exists():
                    stack.append(path)
                elif path.suffix == ".py":
                    found[_module_name(path, root)] = path
    return found


def _imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The raydo modules ``module``'s source imports, anywhere in it."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from package import module`` imports the module; ``from module import name``
            # imports the module that holds the name.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import a.b.c`` names a.b.c's module
                target = target.rpartition(".")[0]
            if target and target != module:
                yield target


@cache
def _graph() -> Graph:
    sources = _sources()
    known = set(sources)
    return {m: set(_imported(m, p, known)) for m, p in sources.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] in SDK:
        return SDK_LAYER
    return LAYERS.index(parts[1]) if len(parts) > 1 else TOP


def _cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _private_owner(target: str) -> str | None:
    """The package a private module belongs to (``raydo.actors`` for ``raydo.actors._host``),
    or None when every part of the name is public."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_"):
            return ".".join(parts[:i])
    return None


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


MODULES = sorted(_sources())


def test_the_graph_sees_every_package_and_the_imports_inside_functions() -> None:
    graph = _graph()
    assert {m.split(".")[1] for m in graph if m.startswith("raydo.")} == set(LAYERS)
    assert {m.split(".")[0] for m in graph} == {"raydo", *SDK}
    assert "raydo.actors" in graph["workers._durable"]  # the SDK is a face over the core
    # runtime imports the platform bindings inside a function: that is an edge too.
    assert "raydo.bindings.queues" in graph["raydo.gateway.runtime"]
    assert "raydo.actors" in graph["raydo"] and "raydo.storage" in graph["raydo"]
    # SQLAlchemy's driver is a binding: it sits on d1 and on storage, and nothing below
    # the gateway imports it.
    assert {"raydo.bindings.d1", "raydo.storage"} <= graph["raydo.bindings.orm._transports"]
    assert not [
        m
        for m, found in graph.items()
        if "raydo.bindings.orm" in found
        and not (_within(m, "raydo.bindings.orm") or _within(m, "raydo.gateway"))
    ]


def test_a_cycle_and_a_private_reach_are_found() -> None:
    graph: Graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _private_owner("raydo.actors._host") == "raydo.actors"
    assert _private_owner("raydo.bindings.r2._presign") == "raydo.bindings.r2"
    assert _private_owner("raydo.actors.placement") is None


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_one_that_imports_it_back(module: str) -> None:
    cycles = [c for c in _cycles(_graph()) if module in c]
    assert cycles == [], f"{module} is in an import cycle: {' <-> '.join(cycles[0])}"


@pytest.mark.parametrize("module", MODULES)
def test_imports_point_down_the_layers(module: str) -> None:
    upward = sorted(t for t in _graph()[module] if _layer(t) > _layer(module))
    assert upward == [], f"{module} imports upward: {upward}"


@pytest.mark.parametrize("module", MODULES)
def test_no_module_reaches_into_another_packages_private_modules(module: str) -> None:
    reached = sorted(
        target
        for target in _graph()[module]
        if (owner := _private_owner(target)) is not None and not _within(module, owner)
    )
    assert reached == [], f"{module} imports private modules of other packages: {reached}"
