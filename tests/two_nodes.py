"""A Ray cluster of two nodes on this machine (a head and a worker, both on 127.0.0.1), each
with its own storage root (``RAYDO_NODE_STORAGE``) so that nothing on one node's disk is seen
by the other, and probes that ask it which nodes are alive and where named hosts run."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.cluster import RAY, RayCluster, make_temp_dir, quiet_env

#: Ray notices a lost node within about two seconds instead of thirty.
FAST_FAILURE_DETECTION = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


@dataclass
class Node:
    cluster: RayCluster  # the head's is the cluster's address; the worker's only its temp dir
    storage: Path


@contextlib.contextmanager
def two_nodes(
    prefix: str, env: Mapping[str, str] = {}, *, own_storage: bool = True
) -> Iterator[tuple[Node, Node]]:
    """Start a head and a worker (one CPU each, token auth, ``env`` added to both) and wait
    until each sees the other; stop both after. With ``own_storage`` each node keeps objects
    under its own ``storage`` folder; without, both use the app's (a shared disk)."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    head, worker = (
        Node(cluster, cluster.temp_dir / "storage")
        for cluster in (RayCluster(make_temp_dir(f"{prefix}{x}-")) for x in "hw")
    )
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    try:
        roles = [
            (head, ["--head", f"--port={head.cluster.port}", "--include-dashboard=false"]),
            (worker, [f"--address={head.cluster.address}"]),
        ]
        for node, role in roles:
            node_env = {**quiet_env(), **env}
            if own_storage:
                node_env["RAYDO_NODE_STORAGE"] = str(node.storage)
            subprocess.run(
                [RAY, "start", *role, *common, f"--temp-dir={node.cluster.temp_dir}"],
                check=True,
                env=node_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=120,
            )
        # `ray start` may return before the cluster sees the new node: wait for both.
        deadline = time.monotonic() + 60
        while alive_nodes(head.cluster) < 2:
            assert time.monotonic() < deadline, "the worker node never joined"
            time.sleep(0.5)
        # And every raylet's view of the other, which lags the GCS: until it has the node, a
        # soft node preference for it is taken as "node gone" and the actor lands elsewhere.
        deadline = time.monotonic() + 60
        while _probe(_AFFINITY_PROBE, head.cluster.address) != "placed":
            assert time.monotonic() < deadline, "actors never landed on the node they preferred"
            time.sleep(0.5)
        yield head, worker
    finally:
        worker.cluster.stop()
        head.cluster.stop()


_ALIVE_PROBE = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
alive = sum(1 for node in ray.nodes() if node["Alive"])
# A node counts once the cluster's resource view has its CPU too (placement reads that view).
print(alive if ray.available_resources().get("CPU", 0) >= 2 else 0)
"""

_AFFINITY_PROBE = """
import sys, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init(address=sys.argv[1], log_to_driver=False)

@ray.remote(num_cpus=0)
class Where:
    def node(self):
        return ray.get_runtime_context().get_node_id()

# Placed as raydo places hosts: an actor of no CPU with a soft preference for each node.
placed = True
for node in sorted(n["NodeID"] for n in ray.nodes() if n["Alive"]):
    actor = Where.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=True)
    ).remote()
    placed = placed and ray.get(actor.node.remote(), timeout=60) == node
    ray.kill(actor)
print("placed" if placed else "elsewhere")
"""

_PLACEMENT_PROBE = """
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


def _probe(source: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", source, *args],
        capture_output=True,
        text=True,
        env=quiet_env(),
        timeout=120,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1]


def alive_nodes(head: RayCluster) -> int:
    """How many nodes the cluster sees alive (0 while its resource view lags)."""
    return int(_probe(_ALIVE_PROBE, head.address))


def host_nodes(head: RayCluster, names: list[str]) -> dict[str, str]:
    """The node id each named host actor runs on (or ``error: ...``)."""
    nodes: dict[str, str] = json.loads(_probe(_PLACEMENT_PROBE, head.address, *names))
    return nodes
