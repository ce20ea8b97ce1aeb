"""Sockets reconciled after a crash (issue 13, item 3), on real processes: the chat room says
"leave" once for every socket whose gateway died with its host, whichever came back first.

Each test runs its own ``raydo dev`` or Ray cluster (``slow``: tens of seconds each).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psutil
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from raydo.actors.websockets import _links
from tests.cluster import (
    RayCluster,
    Server,
    cluster_processes,
    dev,
    host_processes,
    kill_all,
    make_temp_dir,
    process_tree,
    serve,
)
from tests.polling import as_async, poll

pytestmark = pytest.mark.slow

LEAVES_WITHIN_S = _links.RESTART_GRACE_S + 20.0
"""The restarted host's grace for the dead gateway, and slack for a loaded machine."""


@pytest.fixture
def own_cluster() -> Iterator[RayCluster]:
    cluster = RayCluster(make_temp_dir("rds-"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def ws_url(server: Server, name: str) -> str:
    return server.url.replace("http://", "ws://") + f"/room/lobby/ws?name={name}"


@contextlib.asynccontextmanager
async def joined(server: Server, name: str) -> AsyncIterator[ClientConnection]:
    """A chat client in the lobby, once the room has sent it the history."""
    async with websockets.connect(ws_url(server, name), open_timeout=60) as ws:
        event = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert event["type"] == "history"
        yield ws


async def connect_all(server: Server, names: list[str]) -> list[ClientConnection]:
    sockets = []
    for name in names:
        ws = await websockets.connect(ws_url(server, name), open_timeout=60)
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "history"
        sockets.append(ws)
    return sockets


async def test_dev_killed_with_its_hosts_says_leave_once_for_each_dead_socket_after_restart(
    app_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    app = app_copy("chat")
    first = dev(app, tmp_path).start()
    assert first.proc is not None
    dead = [f"dead{n}" for n in range(4)]
    sockets = await connect_all(first, dead)
    # The gateway, its embedded Ray and the room's host die at once, by SIGKILL.
    tree = process_tree(first.proc.pid)
    assert host_processes(tree)
    kill_all(tree)
    for ws in sockets:
        with contextlib.suppress(ConnectionClosed, OSError):
            await ws.close()
    again = dev(app, tmp_path).start()
    try:
        async with joined(again, "watcher") as ws:
            watcher = Listener(ws)
            await poll(as_async(lambda: set(dead) <= set(watcher.leaves)), bool, LEAVES_WITHIN_S)
            # A round trip through the room after them: each dead socket left once.
            async with joined(again, "late"):
                await poll(as_async(lambda: "late" in watcher.joins), bool, 30)
            assert sorted(watcher.leaves[: len(dead)]) == dead
            assert watcher.leaves[len(dead) :] in ([], ["late"]), watcher.leaves
            await watcher.close()
    finally:
        again.stop()


class Listener:
    """A chat client that keeps reading in a task of its own: whom it heard join and leave,
    and whether its own connection ended."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.joins: list[str] = []
        self.leaves: list[str] = []
        self.dropped = False
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                event = json.loads(raw)
                if event["type"] == "join":
                    self.joins.append(event["name"])
                elif event["type"] == "leave":
                    self.leaves.append(event["name"])
        except (ConnectionClosed, OSError):
            pass
        self.dropped = True

    async def close(self) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            await self.ws.close()
        await self._task


def gateway_workers(server: Server) -> list[psutil.Process]:
    """The uvicorn worker processes of a ``raydo serve --workers N``."""
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    return [p for p in root.children() if "spawn_main" in " ".join(p.cmdline())]


def held_by(worker: psutil.Process, ws: ClientConnection) -> bool:
    """Whether ``worker`` holds the server end of the client's connection."""
    port = ws.local_address[1]
    return any(c.raddr and c.raddr.port == port for c in worker.net_connections("tcp"))


CLIENTS_MAX = 64


async def test_serve_worker_and_room_host_killed_says_leave_once_for_each_socket_it_held(
    app_copy: Callable[[str], Path], tmp_path: Path, own_cluster: RayCluster
) -> None:
    server = serve(app_copy("chat"), own_cluster, tmp_path, workers=2)
    clients: dict[str, Listener] = {}
    try:
        workers = gateway_workers(server)
        assert len(workers) == 2
        victim = workers[0]
        # The kernel hands each new connection to whichever worker accepts first; on a busy
        # machine one worker can take a dozen in a row: connect until both hold some.
        dead: list[str] = []
        while len(clients) < CLIENTS_MAX:
            names = [f"s{n}" for n in range(len(clients), len(clients) + 4)]
            sockets = await connect_all(server, names)
            clients.update((name, Listener(ws)) for name, ws in zip(names, sockets, strict=True))
            dead = sorted(name for name, c in clients.items() if held_by(victim, c.ws))
            if len(clients) >= 12 and 0 < len(dead) < len(clients):
                break
        alive = [c for name, c in clients.items() if name not in dead]
        assert dead and alive, f"one worker took all {len(clients)} clients"
        # One gateway worker, then every host of the cluster (the room's among them), by
        # SIGKILL, before the host's grace for the lost worker runs out.
        victim.kill()
        kill_all(host_processes(cluster_processes(own_cluster)))
        await poll(as_async(lambda: all(clients[name].dropped for name in dead)), bool, 30)

        def heard_every_leave() -> bool:
            return all(set(dead) <= set(c.leaves) for c in alive)

        await poll(as_async(heard_every_leave), bool, LEAVES_WITHIN_S)
        # A round trip through the room after them: the leaves came once each, and only
        # for the dead worker's clients.
        async with joined(server, "late"):
            await poll(as_async(lambda: all("late" in c.joins for c in alive)), bool, 30)
            for c in alive:
                assert sorted(c.leaves) == dead, c.leaves
                assert not c.dropped
    finally:
        for client in clients.values():
            await client.close()
        server.stop()
