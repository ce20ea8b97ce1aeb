"""A Ray cluster of two nodes on this machine (a head and a worker, both on 127.0.0.1), each
with its own storage root (``RAYDO_NODE_STORAGE``) so that nothing on one node's disk is seen
by the other, and probes that ask it which nodes are alive and where named hosts run."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
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
        # `ray start` may return before the cluster sees the new node, and every raylet's
        # view of the other lags the GCS: one probe waits for both (see _JOINED_PROBE).
        joined = _probe(_JOINED_PROBE, head.cluster.address, "60")
        assert joined == "joined", f"the two nodes did not come together: {joined}"
        yield head, worker
    finally:
        worker.cluster.stop()
        head.cluster.stop()


_JOINED_PROBE = """
import sys, time, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + float(sys.argv[2])

@ray.remote(num_cpus=0, memory=1)  # as hosts ask: Ray places an actor of no request at random
class Where:
    def node(self):
        return ray.get_runtime_context().get_node_id()

def alive():
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    # A node counts once the cluster's resource view has its CPU too (placement reads it).
    return nodes if ray.available_resources().get("CPU", 0) >= 2 else []

def placed(nodes):
    # Placed as raydo places hosts: an actor of no CPU with a soft preference for each node.
    # Until a raylet's view has the other node, such a preference lands the actor elsewhere.
    ok = True
    for node in nodes:
        actor = Where.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=True)
        ).remote()
        ok = ok and ray.get(actor.node.remote(), timeout=60) == node
        ray.kill(actor)
    return ok

state = "the worker node never joined"
while time.monotonic() < deadline:
    nodes = alive()
    if len(nodes) >= 2:
        state = "actors never landed on the node they preferred"
        if placed(nodes):
            state = "joined"
            break
    time.sleep(0.25)
print(state)
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


_HOST_PLACEMENT_PROBE = """
import json, sys, ray
from raydo.actors._ray import host_placement
from raydo.actors._spec import HostKey

ray.init(address=sys.argv[1], log_to_driver=False)

@ray.remote
class Where:
    def node(self):
        return ray.get_runtime_context().get_node_id()

nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
actors = [
    Where.options(**host_placement(HostKey("PROBE", shard=shard))).remote()
    for shard in range(int(sys.argv[2]))
]
placed = [
    [nodes[shard % len(nodes)], ray.get(actor.node.remote(), timeout=60)]
    for shard, actor in enumerate(actors)
]
for actor in actors:
    ray.kill(actor)
print(json.dumps(placed))
"""


def placed_as_hosts(head: RayCluster, shards: int) -> list[tuple[str, str]]:
    """Actors placed with the options of hosts for shards 0 to ``shards - 1``, each created
    once, all at once: for each, the node it should prefer (shard n: alive node n mod N, by
    id) and the node it landed on."""
    placed = json.loads(_probe(_HOST_PLACEMENT_PROBE, head.address, str(shards)))
    return [(want, got) for want, got in placed]


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


def host_nodes(head: RayCluster, names: list[str]) -> dict[str, str]:
    """The node id each named host actor runs on (or ``error: ...``)."""
    nodes: dict[str, str] = json.loads(_probe(_PLACEMENT_PROBE, head.address, *names))
    return nodes
