"""Helpers of the actors tests: specs, in-process placements, files on disk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from raydo.actors import BindingSpec, RuntimeSpec
from raydo.actors.placement import LocalPlacement
from raydo.storage.limits import DEFAULT_LIMITS, Limits

REPO_ROOT = str(Path(__file__).parents[2])


def binding(name: str, cls: str, **options: Any) -> BindingSpec:
    return BindingSpec(name, f"tests.actors.sample_objects:{cls}", **options)


def make_spec(
    storage_root: Path | str,
    *bindings: BindingSpec,
    app_name: str = "actors-tests",
    limits: Limits = DEFAULT_LIMITS,
) -> RuntimeSpec:
    return RuntimeSpec(app_name, REPO_ROOT, str(storage_root), bindings=bindings, limits=limits)


class Place(Protocol):
    """The ``place`` fixture: in-process hosts for these bindings, closed when the test ends."""

    def __call__(
        self, *bindings: BindingSpec, app_name: str = ..., limits: Limits = ...
    ) -> LocalPlacement: ...


@asynccontextmanager
async def placed(spec: RuntimeSpec) -> AsyncIterator[LocalPlacement]:
    placement = LocalPlacement(spec)
    try:
        yield placement
    finally:
        await placement.close()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def open_files_under(root: Path) -> list[str]:
    import psutil

    prefix = str(root.resolve())
    return [f.path for f in psutil.Process().open_files() if f.path.startswith(prefix)]


def storage_is_open(instance: Any) -> bool:
    """White-box: whether an object's SQLite file is open (its storage core's connection)."""
    return bool(instance.ctx.storage._core.is_open)
