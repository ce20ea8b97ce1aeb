"""Hosts and machines that die: nothing acknowledged is lost and every due alarm still runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from raydo.gateway.testing import start_app
from tests.cluster import RAY, RayCluster, Server, make_temp_dir, quiet_env, serve
from tests.hosts import actor_name, host_actor


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

PLACEMENT_PROBE = """
import json, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
nodes = {}
for name in sys.argv[2:]:
    try:
        nodes[name] = ray.get(ray.get_actor(name, "raydo").node_id.remote(), timeout=30)
    except Exception as exc:
        nodes[name] = f"error: {exc}"
print(json.dumps(nodes))
"""


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[RayCluster, RayCluster]]:
    """A head and a worker node, both on 127.0.0.1, with fast failure detection."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    head = RayCluster(make_temp_dir("rdh-"))
    worker = RayCluster(make_temp_dir("rdw-"))
    fast = {
        "RAY_health_check_initial_delay_ms": "1000",
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_timeout_ms": "500",
        "RAY_health_check_failure_threshold": "3",
    }
    env = {**quiet_env(), **fast}
    subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={head.port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={head.temp_dir}",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
    )
    subprocess.run(
        [
            RAY,
            "start",
            f"--address={head.address}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            "--disable-usage-stats",
            f"--temp-dir={worker.temp_dir}",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
    )
    try:
        # `ray start` may return before the cluster sees the new node: wait for both.
        deadline = time.monotonic() + 60
        while _alive_nodes(head) < 2:
            assert time.monotonic() < deadline, "the worker node never joined"
            time.sleep(0.5)
        time.sleep(2)  # and every raylet's view of the other, which lags the GCS a little
        yield head, worker
    finally:
        worker.stop()
        head.stop()


ALIVE_PROBE = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
alive = sum(1 for node in ray.nodes() if node["Alive"])
# A node counts once the cluster's resource view has its CPU too (placement reads that view).
print(alive if ray.available_resources().get("CPU", 0) >= 2 else 0)
"""


def _alive_nodes(head: RayCluster) -> int:
    out = subprocess.run(
        [sys.executable, "-c", ALIVE_PROBE, head.address],
        capture_output=True,
        text=True,
        env=quiet_env(),
        timeout=120,
        check=True,
    ).stdout
    return int(out.strip().splitlines()[-1])


def _host_nodes(head: RayCluster, names: list[str]) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", PLACEMENT_PROBE, head.address, *names],
        capture_output=True,
        text=True,
        env=quiet_env(),
        timeout=120,
        check=True,
    ).stdout
    nodes: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    return nodes


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
    server: Server = serve(app_dir, head, tmp_path)
    names = [f"n{i}" for i in range(24)]
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for name in names:
                for _ in range(2):
                    assert client.post(f"/counter/{name}/increment").status_code == 200
            # The gateway moves hosts Ray placed off their preferred node, at start-up.
            deadline = time.monotonic() + 30
            placed = _host_nodes(head, hosts)
            while len(set(placed.values())) != 2 and time.monotonic() < deadline:
                time.sleep(1)
                placed = _host_nodes(head, hosts)
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
            survivors = _host_nodes(head, hosts)
            assert len(set(survivors.values())) == 1, survivors
    finally:
        server.stop()
