"""Fixtures of the alarm and lifecycle tests: the alarms app, in-process or on Ray."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lifecycle.support import kill_hosts


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def placement(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``start_app`` keyword arguments: hosts in this process, or in the session's Ray cluster."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        return {"ray": True}
    return {}


@pytest.fixture
def alarms_dir(app_copy: Callable[[str], Path], placement: dict[str, Any]) -> Iterator[Path]:
    """A fresh copy of the alarms app; its Ray hosts (which outlive ``start_app``) die after."""
    path = app_copy("alarms")
    yield path
    if placement:
        kill_hosts(path)


@pytest.fixture
def local_alarms_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("alarms")
