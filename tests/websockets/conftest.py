"""Fixtures of the WebSocket tests: the rooms app (``rooms.py``), shared by the tests of a module
on each placement (each test uses its own object names, so Ray hosts start once), and started.

``placement`` is module-scoped here, so that the tests of a module run on one placement and
then the other, and ``app`` is started once for each, not once per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from raydo.gateway.testing import TestApp
from tests.placements import Placement, placement_per_module
from tests.websockets.rooms import SLOW_QUEUE, Room, shared_app, started

placement = placement_per_module()


@pytest.fixture(scope="module")
def shared_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """App copies shared by the tests of this module (each test uses its own object names),
    so Ray hosts start once; those hosts are killed when the module is done."""
    made: dict[str, Path] = {}
    yield made
    for kind, path in made.items():
        if kind.startswith("ray"):
            from tests.hosts import kill_hosts

            kill_hosts(path)


@pytest.fixture
def local_rooms(shared_apps: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_app(shared_apps, tmp_path_factory, {})


@pytest.fixture(scope="module")
def rooms(
    shared_apps: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    placement: Placement,
) -> Path:
    return shared_app(shared_apps, tmp_path_factory, placement)


@pytest.fixture(scope="module")
async def app(rooms: Path, placement: Placement) -> AsyncIterator[TestApp]:
    """The rooms app (both routes), started on the module's placement for all its tests."""
    async with started(rooms, placement) as app:
        yield app


@pytest.fixture
def slow_rooms(
    shared_apps: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    placement: Placement,
) -> Path:
    return shared_app(shared_apps, tmp_path_factory, placement, socket_queue=SLOW_QUEUE)


@pytest.fixture
def room(app: TestApp, name: str) -> Room:
    """A fresh ``Room`` object of the started app."""
    return Room(app.websocket_url(f"/room/{name}"), app.env.ROOM.get_by_name(name))
