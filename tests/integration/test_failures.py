"""Hosts and machines that die: nothing acknowledged is lost and every due alarm still runs."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from raydo.gateway.testing import start_app
from tests.cluster import RayCluster, Server, serve
from tests.hosts import actor_name, host_actor
from tests.two_nodes import FAST_FAILURE_DETECTION, host_nodes, placed_as_hosts
from tests.two_nodes import two_nodes as start_two_nodes


async def test_a_killed_host_still_runs_every_due_alarm(
    ray_cluster: RayCluster, app_copy: Callable[[str], Path]
) -> None:
    app_dir = app_copy("alarms")
    spec = runtime_spec(load_config(app_dir))
    names = [f"due-{i}" for i in range(12)]

    async with start_app(app_dir, ray=True) as app:
        clocks = [app.env.CLOCK.get_by_name(n) for n in names]
        # Due in 1.5 s: the host dies before, and must run them after its restart.
        await asyncio.gather(*(c.set_in(1500) for c in clocks))
        host = host_actor(spec, "CLOCK", clocks[0].id.hex)
        pid = await host.pid.remote()

        writes = 0

        async def write_load() -> None:
            nonlocal writes
            stub = app.env.CLOCK.get_by_name("writer")
            while True:
                try:
                    await stub.remember()
                    writes += 1
                except Exception:  # noqa: BLE001 - failures during the kill are expected
                    await asyncio.sleep(0.05)

        load = asyncio.ensure_future(write_load())
        await asyncio.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        pending = set(names)
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            for name in list(pending):
                try:
                    runs = await app.env.CLOCK.get_by_name(name).runs()
                except Exception:  # noqa: BLE001 - the host may still be restarting
                    continue
                if runs:
                    assert runs[0]["at"] >= runs[0]["scheduled_time"]
                    pending.discard(name)
        load.cancel()
        assert not pending, f"alarms that never ran: {sorted(pending)}"
        assert await host.pid.remote() != pid
        assert writes > 0


# ---- two nodes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[RayCluster, RayCluster]]:
    """A head and a worker node, both on 127.0.0.1, sharing the app's storage folder, with
    fast failure detection."""
    with start_two_nodes("rd", FAST_FAILURE_DETECTION, own_storage=False) as (head, worker):
        yield head.cluster, worker.cluster


def test_objects_of_a_lost_node_answer_again_from_the_survivor(
    two_nodes: tuple[RayCluster, RayCluster],
    app_copy: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    head, worker = two_nodes
    app_dir = app_copy("counter")
    toml = app_dir / "raydo.toml"
    toml.write_text(toml.read_text().replace("shards = 2", "shards = 4"))
    spec = runtime_spec(load_config(app_dir))
    hosts = sorted({actor_name(spec, key) for key in spec.standing_hosts()})
    # Each host lands on its preferred node at the first try, none left to luck: Ray puts an
    # actor that asks for no resources on a random node whatever its soft preference, so
    # before hosts asked for a byte of memory, all 8 landing right had odds of 1 in 256.
    probes = placed_as_hosts(head, 8)
    assert all(want == got for want, got in probes), probes
    server: Server = serve(app_dir, head, tmp_path)
    names = [f"n{i}" for i in range(24)]
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for name in names:
                for _ in range(2):
                    assert client.post(f"/counter/{name}/increment").status_code == 200
            # The gateway moves hosts Ray placed off their preferred node, at start-up.
            deadline = time.monotonic() + 30
            placed = host_nodes(head, hosts)
            while len(set(placed.values())) != 2 and time.monotonic() < deadline:
                time.sleep(1)
                placed = host_nodes(head, hosts)
            assert len(set(placed.values())) == 2, f"hosts did not spread: {placed}"

            worker.stop()  # the whole worker node: its raylet and every host on it

            expected: dict[str, Any] = {name: 3 for name in names}
            deadline = time.monotonic() + 90
            pending = set(names)
            while pending and time.monotonic() < deadline:
                for name in sorted(pending):
                    reply = client.post(f"/counter/{name}/increment")
                    if reply.status_code == 200:
                        assert reply.json()["value"] == expected[name], (name, reply.json())
                        pending.discard(name)
                    else:
                        assert reply.status_code == 503, reply.text
                time.sleep(0.2)
            assert not pending, f"objects that never answered again: {sorted(pending)}"
            survivors = host_nodes(head, hosts)
            assert len(set(survivors.values())) == 1, survivors
    finally:
        server.stop()
