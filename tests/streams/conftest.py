"""Fixtures of the streaming tests: the streams app (``app/``), in process or on Ray.

``streams_dir(extra)`` copies the app under a fresh name (``extra`` is appended to its
``raydo.toml``, for limits); its Ray hosts die when the test ends. ``app`` is the plain copy,
started on the test's placement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from tests.cluster import copy_app
from tests.placements import Placement

STREAMS_APP = Path(__file__).resolve().parent / "app"

MakeApp = Callable[..., Path]


@pytest.fixture
def streams_dir(
    tmp_path: Path, placement: Placement, kill_hosts_after: Callable[[Path], Path]
) -> MakeApp:
    made = 0

    def make(extra: str = "") -> Path:
        nonlocal made
        made += 1
        into = tmp_path / f"copy{made}"
        into.mkdir()
        path = copy_app(STREAMS_APP, into)
        if extra:
            toml = path / "raydo.toml"
            toml.write_text(toml.read_text() + "\n" + extra + "\n")
        return kill_hosts_after(path) if placement else path

    return make


@pytest.fixture
async def app(streams_dir: MakeApp, placement: Placement) -> AsyncIterator[TestApp]:
    async with start_app(streams_dir(), **placement, storage=CONFIGURED_STORAGE) as app:
        yield app
