"""Fixtures of the alarm and lifecycle tests: the alarms app, in-process or on Ray."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from tests.placements import Placement


@pytest.fixture
def alarms_dir(
    app_copy: Callable[[str], Path],
    placement: Placement,
    kill_hosts_after: Callable[[Path], Path],
) -> Path:
    """A fresh copy of the alarms app; its Ray hosts (which outlive ``start_app``) die after."""
    path = app_copy("alarms")
    return kill_hosts_after(path) if placement else path


@pytest.fixture
def local_alarms_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("alarms")


@pytest.fixture
async def app(alarms_dir: Path, placement: Placement) -> AsyncIterator[TestApp]:
    """The alarms app, started on the test's placement."""
    async with start_app(alarms_dir, **placement, storage=CONFIGURED_STORAGE) as app:
        yield app
