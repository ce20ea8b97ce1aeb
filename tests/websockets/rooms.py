"""The WebSocket tests' app: a copy of ``tests/apps/rooms`` with two routes, ``/room/{name}``
(``Room``, the text command protocol of ``tests/apps/rooms/objects.py``) and ``/lab/{name}/...``
(``Lab`` of ``more_objects.py``: a Room that also reports its upgrade request, its socket ids,
and stored values)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from raydo.gateway.testing import TestApp, start_app
from tests.cluster import REPO, copy_app
from tests.placements import Placement

APP_MODULES = ("app", "objects", "more_objects")

SLOW_QUEUE = 50
"""The per-socket outgoing queue of ``slow_rooms``: a client that lags this far is dropped."""

ROUTES = """\
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket


async def room(websocket: WebSocket) -> None:
    stub = websocket.state.env.ROOM.get_by_name(websocket.path_params["name"])
    await stub.fetch(websocket)


async def lab(websocket: WebSocket) -> None:
    stub = websocket.state.env.LAB.get_by_name(websocket.path_params["name"])
    await stub.fetch(websocket)


app = Starlette(
    routes=[
        WebSocketRoute("/room/{name}", room),
        WebSocketRoute("/lab/{name}", lab),
        WebSocketRoute("/lab/{name}/{rest:path}", lab),
    ]
)
"""

LAB_BINDING = """
[[durable_objects.bindings]]
name = "LAB"
class_name = "more_objects:Lab"
shards = 1
"""


def make_app(app_dir: Path, *, socket_queue: int | None = None) -> Path:
    """Turn a copy of ``tests/apps/rooms`` into the test app: both routes, the LAB binding, and
    optionally a small per-socket outgoing queue."""
    (app_dir / "app.py").write_text(ROUTES)
    toml = app_dir / "raydo.toml"
    text = toml.read_text() + LAB_BINDING
    if socket_queue is not None:
        text += f"\n[limits]\nsocket_queue = {socket_queue}\n"
    toml.write_text(text)
    return app_dir


def new_app(into: Path, *, socket_queue: int | None = None) -> Path:
    return make_app(copy_app(REPO / "tests" / "apps" / "rooms", into), socket_queue=socket_queue)


def shared_app(
    shared: dict[str, Path],
    factory: pytest.TempPathFactory,
    placement: Placement,
    *,
    socket_queue: int | None = None,
) -> Path:
    """The module's copy of the app for this placement and queue size, made on first use."""
    kind = ("ray" if placement else "local") + (f"-q{socket_queue}" if socket_queue else "")
    if kind not in shared:
        shared[kind] = new_app(factory.mktemp(f"rooms-{kind}"), socket_queue=socket_queue)
    return shared[kind]


def forget_other_apps(app_dir: Path) -> None:
    """Drop app modules another app copy imported: in-process, modules are cached by bare name."""
    for name in APP_MODULES:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if module is not None and (file is None or Path(file).resolve().parent != app_dir):
            del sys.modules[name]


@contextlib.asynccontextmanager
async def started(app_dir: Path, placement: Placement) -> AsyncIterator[TestApp]:
    forget_other_apps(app_dir.resolve())
    async with start_app(app_dir, **placement) as app:
        yield app


@dataclass(frozen=True)
class Room:
    """One ``Room`` object of a started app: the URL its clients connect to, and an RPC stub."""

    url: str
    stub: Any
