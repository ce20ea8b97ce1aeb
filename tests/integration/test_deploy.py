"""``raydo deploy`` on the session cluster: hosts import the app from Ray's copy of its folder,
and a new version restarts them on the new code, keeping their objects' data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from tests.cluster import RAYDO, RayCluster, Server, free_port, quiet_env

Gateway = Callable[..., Server]


def raydo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAYDO, *args], env=quiet_env(), capture_output=True, text=True, timeout=300
    )


def hosts(app: Path, address: str) -> dict[str, dict[str, Any]]:
    done = raydo("status", str(app), "--address", address, "--json")
    assert done.returncode == 0, done.stderr
    return {host["host"]: host for host in json.loads(done.stdout)["hosts"]}


def test_deployed_hosts_import_the_app_without_its_folder_and_take_a_new_version(
    app_copy: Callable[[str], Path],
    gateway: Gateway,
    ray_cluster: RayCluster,
    kill_hosts_after: Callable[[Path], Path],
    tmp_path: Path,
) -> None:
    source = app_copy("counter")
    toml = source / "raydo.toml"
    text = toml.read_text().replace('storage = ".raydo"', f'storage = "{tmp_path / "data"}"')
    toml.write_text(text + "idle_timeout_s = 3600\n")
    spec = runtime_spec(load_config(source))
    labels = sorted(key.label for key in spec.standing_hosts())

    deployed = raydo("deploy", str(source), "--address", ray_cluster.address)
    assert deployed.returncode == 0, deployed.stderr
    assert [f"  {label}: started" for label in labels] == [
        line for line in deployed.stdout.splitlines() if line.startswith("  ")
    ]

    # The gateway serves from another copy; the deployed folder is gone from the machine.
    served = kill_hosts_after(tmp_path / "served")
    shutil.copytree(source, served)
    shutil.rmtree(source)
    before = hosts(served, ray_cluster.address)
    assert sorted(before) == labels
    assert {host["code"] for host in before.values()} == {"current"}
    server = gateway(served)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/counter/d/increment").json()["value"] == 1
        hex_id = client.get("/counter/d/id").json()["id"]
    label = spec.host_for(spec.binding("COUNTER"), hex_id).label
    running = hosts(served, ray_cluster.address)
    assert {name: host["pid"] for name, host in running.items()} == {
        name: host["pid"] for name, host in before.items()
    }  # the gateway uses the deployed hosts

    # Ray restarts a killed host from its copy of the folder, after the deploy has ended.
    os.kill(running[label]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 120  # waits for Ray's restart; no timing is asserted
    while True:
        now = hosts(served, ray_cluster.address)[label]
        if now["restarts"] == 1 and now["up"]:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.5)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/counter/d/increment").json()["value"] == 2

    # A new version: each host is restarted on it, and the object keeps its data.
    counter = served / "counter.py"
    counter.write_text(counter.read_text().replace("by: int = 1)", "by: int = 10)"))
    again = raydo("deploy", str(served), "--address", ray_cluster.address)
    assert again.returncode == 0, again.stderr
    assert [f"  {name}: updated" for name in labels] == [
        line for line in again.stdout.splitlines() if line.startswith("  ")
    ]
    after = hosts(served, ray_cluster.address)
    assert {host["code"] for host in after.values()} == {"current"}
    assert all(after[name]["pid"] != running[name]["pid"] for name in labels)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/counter/d/increment").json()["value"] == 12

    unchanged = raydo("deploy", str(served), "--address", ray_cluster.address)
    assert unchanged.returncode == 0, unchanged.stderr
    assert [f"  {name}: unchanged" for name in labels] == [
        line for line in unchanged.stdout.splitlines() if line.startswith("  ")
    ]


def test_deploy_to_no_cluster_is_an_error_that_says_so(app_copy: Callable[[str], Path]) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    done = raydo("deploy", str(app_copy("counter")), "--address", nowhere)
    assert done.returncode == 1
    assert f"no Ray cluster answers at {nowhere}" in done.stderr


def test_a_carried_file_that_is_no_wheel_is_refused_before_joining_the_cluster(
    app_copy: Callable[[str], Path],
) -> None:
    app = app_copy("counter")
    (app / "wheels").mkdir()
    (app / "wheels" / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip archive")
    (app / "requirements.txt").write_text("./wheels/broken-1.0-py3-none-any.whl\n")
    done = raydo("deploy", str(app), "--address", f"127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert done.stderr.startswith(
        "raydo: error: the app's dependencies: broken-1.0-py3-none-any.whl is not a wheel"
    ), done.stderr


def test_a_requirement_outside_the_app_folder_is_refused_naming_its_line(
    app_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    app = app_copy("counter")
    (tmp_path / "elsewhere.whl").write_bytes(b"")
    (app / "requirements.txt").write_text("httpx\n../elsewhere.whl\n")
    done = raydo("deploy", str(app), "--address", f"127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert "requirements.txt, line 2: '../elsewhere.whl' is outside the app's folder" in (
        done.stderr
    )
