"""Fixtures of the gates tests: the gates app (``app/``), in process or on Ray.

``gates_dir(top)`` copies the app under a fresh name (``top`` lines go at the top of its
``raydo.toml``, for ``durability``); its Ray hosts die when the test ends. ``app`` is the
plain copy, started on the test's placement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from raydo.gateway.testing import TestApp, start_app
from tests.cluster import copy_app
from tests.placements import Placement

GATES_APP = Path(__file__).resolve().parent / "app"

MakeApp = Callable[..., Path]


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


@pytest.fixture
async def app(gates_dir: MakeApp, placement: Placement) -> AsyncIterator[TestApp]:
    async with start_app(gates_dir(), **placement) as app:
        yield app
