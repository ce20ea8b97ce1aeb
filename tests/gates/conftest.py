"""Fixtures of the gates tests: the gates app (``app/``), in process or on Ray.

``placement`` is module-scoped here, so that the tests of a module run on one placement and
then the other, and ``app`` (the plain copy, started on it) is started once for each: Ray hosts
start once per module, not once per test. Each test uses its own object names (``name``), so
sharing the app shares no object. ``gates_dir(top)`` copies the app under a fresh name (``top``
lines go at the top of its ``raydo.toml``, for ``durability``), for a test that needs an app of
its own; its Ray hosts die when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from raydo.gateway.testing import TestApp, start_app
from tests.cluster import copy_app
from tests.placements import Placement, placement_per_module

GATES_APP = Path(__file__).resolve().parent / "app"

MakeApp = Callable[..., Path]


placement = placement_per_module()


@pytest.fixture
def gates_dir(
    tmp_path: Path, placement: Placement, kill_hosts_after: Callable[[Path], Path]
) -> MakeApp:
    made = 0

    def make(top: str = "") -> Path:
        nonlocal made
        made += 1
        into = tmp_path / f"copy{made}"
        into.mkdir()
        path = copy_app(GATES_APP, into)
        if top:
            toml = path / "raydo.toml"
            name, rest = toml.read_text().split("\n", 1)
            toml.write_text(f"{name}\n{top}\n{rest}")
        return kill_hosts_after(path) if placement else path

    return make


@pytest.fixture(scope="module")
async def app(
    placement: Placement, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TestApp]:
    """The gates app, shared by the tests of a module on one placement."""
    path = copy_app(GATES_APP, tmp_path_factory.mktemp("gates"))
    try:
        async with start_app(path, **placement) as app:
            yield app
    finally:
        if placement:
            from tests.hosts import kill_hosts  # imports ray: only once the cluster is joined

            kill_hosts(path)
