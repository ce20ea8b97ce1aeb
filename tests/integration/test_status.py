"""``raydo status`` against real ``raydo serve`` processes on the session cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import ray

from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from tests.cluster import RAYDO, RayCluster, Server, free_port, quiet_env

Gateway = Callable[..., Server]


def status(app: Path, address: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAYDO, "status", str(app), "--address", address, *flags],
        env=quiet_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def status_json(app: Path, address: str) -> dict[str, Any]:
    done = status(app, address, "--json")
    assert done.returncode == 0, done.stderr
    reply: dict[str, Any] = json.loads(done.stdout)
    return reply


def counter_copy(app_copy: Callable[[str], Path]) -> Path:
    """The counter, whose objects stay live for the whole test."""
    app = app_copy("counter")
    toml = app / "raydo.toml"
    toml.write_text(toml.read_text() + "idle_timeout_s = 3600\n")
    return app


def test_status_lists_the_hosts_their_node_objects_and_code(
    app_copy: Callable[[str], Path],
    gateway: Gateway,
    ray_cluster: RayCluster,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app = kill_hosts_after(counter_copy(app_copy))
    server = gateway(app)
    spec = runtime_spec(load_config(app))
    names = [f"n{i}" for i in range(6)]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for name in names:
            assert client.post(f"/counter/{name}/increment").status_code == 200
        ids = {name: client.get(f"/counter/{name}/id").json()["id"] for name in names}

    reply = status_json(app, ray_cluster.address)
    assert reply["app"] == spec.app_name
    assert len(reply["code_version"]) > 0
    hosts = {host["host"]: host for host in reply["hosts"]}
    assert set(hosts) == {key.label for key in spec.standing_hosts()}
    nodes = {str(node["NodeID"]) for node in ray.nodes() if node.get("Alive")}  # type: ignore[no-untyped-call]
    counter = spec.binding("COUNTER")
    expected: dict[str, int] = {}
    for hex_id in ids.values():
        label = spec.host_for(counter, hex_id).label
        expected[label] = expected.get(label, 0) + 1
    for label, host in hosts.items():
        assert set(host) == {
            "host",
            "binding",
            "up",
            "node",
            "pid",
            "code_version",
            "code",
            "live_objects",
            "mailbox_depth",
            "restarts",
        }
        assert host["up"] is True
        assert host["node"] in nodes
        assert isinstance(host["pid"], int) and host["pid"] > 0
        assert host["code_version"] == reply["code_version"]
        assert host["code"] == "current"
        assert host["live_objects"] == expected.get(label, 0)
        assert host["mailbox_depth"] == 0
        assert host["restarts"] == 0

    table = status(app, ray_cluster.address)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"app {spec.app_name}  code version {reply['code_version']}")
    assert lines[1].split() == [
        "host", "node", "pid", "up", "code", "live", "objects", "mailbox", "restarts"
    ]  # fmt: skip
    for label, host in hosts.items():
        row = next(line for line in lines[2:] if line.startswith(label + " "))
        assert row.split() == [
            label,
            host["node"][:12],
            str(host["pid"]),
            "yes",
            "current",
            str(host["live_objects"]),
            "0",
            "0",
        ]

    # Files changed since the hosts loaded them: the hosts run older code.
    (app / "counter.py").write_text((app / "counter.py").read_text() + "\n# changed\n")
    changed = status_json(app, ray_cluster.address)
    assert changed["code_version"] != reply["code_version"]
    assert {host["code"] for host in changed["hosts"]} == {"older code"}


def test_status_counts_a_host_restart(
    app_copy: Callable[[str], Path],
    gateway: Gateway,
    ray_cluster: RayCluster,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app = kill_hosts_after(counter_copy(app_copy))
    server = gateway(app)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/counter/r/increment").json()["value"] == 1
        hex_id = client.get("/counter/r/id").json()["id"]
    spec = runtime_spec(load_config(app))
    label = spec.host_for(spec.binding("COUNTER"), hex_id).label
    before = {host["host"]: host for host in status_json(app, ray_cluster.address)["hosts"]}
    os.kill(before[label]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 120  # Ray restarts the actor; wait for it, not a timing
    while True:
        after = {host["host"]: host for host in status_json(app, ray_cluster.address)["hosts"]}
        if after[label]["restarts"] == 1 and after[label]["up"]:
            break
        assert time.monotonic() < deadline, after
        time.sleep(0.5)
    assert after[label]["pid"] != before[label]["pid"]
    assert all(host["restarts"] == 0 for name, host in after.items() if name != label)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/counter/r/increment").json()["value"] == 2


def test_status_errors_name_the_unreachable_cluster_and_the_app_without_hosts(
    app_copy: Callable[[str], Path], ray_cluster: RayCluster
) -> None:
    app = app_copy("counter")
    nowhere = f"127.0.0.1:{free_port()}"
    done = status(app, nowhere)
    assert done.returncode == 1
    assert f"no Ray cluster answers at {nowhere}" in done.stderr
    assert done.stdout == ""

    done = status(app, "not-an-address")
    assert done.returncode == 1
    assert "--address takes 'auto' or host:port" in done.stderr

    done = status(app, ray_cluster.address, "--json")
    assert done.returncode == 1
    name = load_config(app).name
    assert f"the app {name!r} has no hosts on the Ray cluster at {ray_cluster.address}" in (
        done.stderr
    )
    assert done.stdout == ""
