"""Helpers of the actors tests: specs, in-process placements, files on disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from raydo.actors import BindingSpec, RuntimeSpec
from raydo.actors.placement import LocalPlacement
from raydo.storage.limits import DEFAULT_LIMITS, Limits

REPO_ROOT = str(Path(__file__).parents[2])
T = TypeVar("T")


def binding(name: str, cls: str, **options: Any) -> BindingSpec:
    return BindingSpec(name, f"tests.actors.sample_objects:{cls}", **options)


def make_spec(
    storage_root: Path | str,
    *bindings: BindingSpec,
    app_name: str = "actors-tests",
    limits: Limits = DEFAULT_LIMITS,
) -> RuntimeSpec:
    return RuntimeSpec(app_name, REPO_ROOT, str(storage_root), bindings=bindings, limits=limits)


@asynccontextmanager
async def placed(spec: RuntimeSpec) -> AsyncIterator[LocalPlacement]:
    placement = LocalPlacement(spec)
    try:
        yield placement
    finally:
        await placement.close()


def run(main: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """Run an async test body in a fresh event loop, bounded in time."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def open_files_under(root: Path) -> list[str]:
    import psutil

    prefix = str(root.resolve())
    return [f.path for f in psutil.Process().open_files() if f.path.startswith(prefix)]


def storage_is_open(instance: Any) -> bool:
    """White-box: whether an object's SQLite file is open (its storage core's connection)."""
    return bool(instance.ctx.storage._core.is_open)
