"""When Ray itself fails, raydo says so (issue 13, item 4), and stopping is quiet (item 9).

Each test starts its own ``raydo dev`` (with its embedded Ray) or its own Ray cluster for
``raydo serve``, and kills parts of it: never the session's shared cluster. They take tens of
seconds each, so they are marked ``slow`` (``.ci/run`` runs them; ``-m "not slow"`` skips).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.cluster import (
    RayCluster,
    Server,
    cluster_processes,
    dev,
    host_processes,
    kill_all,
    make_temp_dir,
    named,
    process_tree,
    serve,
)
from tests.polling import as_async, poll

pytestmark = pytest.mark.slow

CALL_BOUND_S = 15.0
"""The longest a call may wait while the cluster cannot run hosts (5 s per connect attempt,
a few seconds for the watch to see it, and a loaded machine's slack)."""


@pytest.fixture
def own_cluster() -> Iterator[RayCluster]:
    """A Ray cluster of the test's own (the session's token), stopped after it."""
    cluster = RayCluster(make_temp_dir("rdf-"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def exit_of(server: Server, timeout: float = 60.0) -> int:
    assert server.proc is not None
    return server.proc.wait(timeout)


async def exits(server: Server, timeout: float = 60.0) -> int:
    return await asyncio.to_thread(exit_of, server, timeout)


def no_traceback(output: str) -> None:
    assert "Traceback" not in output, output


@pytest.mark.parametrize("part", ["gcs_server", "raylet"])
async def test_dev_exits_naming_the_ray_process_that_died_and_its_log(
    app_copy: Callable[[str], Path], tmp_path: Path, part: str
) -> None:
    server = dev(app_copy("counter"), tmp_path).start()
    assert server.proc is not None
    tree: list[psutil.Process] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.post("/counter/a/increment")).status_code == 200
        tree = process_tree(server.proc.pid)
        (victim,) = named(tree, part)
        victim.kill()
        assert await exits(server) == 1
        output = server.output()
        assert f"Ray's {part} (pid {victim.pid}) was killed by signal 9" in output
        said = re.search(r"its log: (\S+)\. raydo dev cannot start or restart hosts", output)
        assert said is not None, output
        assert Path(said.group(1)).name == f"{part}.out" and Path(said.group(1)).exists()
        # It took its embedded Ray down with it. (The raylet's agents, which it started
        # itself, may outlive a raylet killed from outside by a few seconds more.)
        ray_core = [*named(tree, "gcs_server"), *named(tree, "raylet"), *host_processes(tree)]
        _, alive = psutil.wait_procs(ray_core, timeout=30)
        assert not alive, alive
    finally:
        server.stop()
        kill_all([p for p in tree if p.is_running()])


async def test_dev_stops_quietly_and_in_order_on_sigterm(
    app_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    server = dev(app_copy("counter"), tmp_path).start()
    assert server.proc is not None
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.post("/counter/a/increment")).status_code == 200
        tree = process_tree(server.proc.pid)
        assert host_processes(tree), "the counter's hosts run under the dev process"
        server.proc.send_signal(signal.SIGTERM)  # as a process manager stops it
        assert await exits(server) == 0
        output = server.output()
        no_traceback(output)
        assert output.rstrip().endswith("raydo: stopped (SIGTERM)"), output[-500:]
        _, alive = psutil.wait_procs(tree, timeout=30)  # its hosts and its Ray are gone too
        assert not alive, alive
    finally:
        server.stop()


async def test_sigint_stops_serve_with_two_workers_quietly(
    app_copy: Callable[[str], Path], gateway: Callable[..., Server]
) -> None:
    server = gateway(app_copy("counter"), workers=2)
    assert server.proc is not None
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for _ in range(4):
            assert (await client.post("/counter/a/increment")).status_code == 200
    os.killpg(server.proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
    assert await exits(server) == 0
    output = server.output()
    no_traceback(output)
    assert output.rstrip().endswith("raydo: stopped (SIGINT)"), output[-2000:]


async def timed_post(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    reply = await client.post(path)
    return reply, time.monotonic() - started


async def test_serve_answers_503_with_the_reason_when_the_raylet_dies_and_a_host_after_it(
    app_copy: Callable[[str], Path], tmp_path: Path, own_cluster: RayCluster
) -> None:
    server = serve(app_copy("counter"), own_cluster, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            assert (await client.post("/counter/a/increment")).status_code == 200
            (raylet,) = named(cluster_processes(own_cluster), "raylet")
            raylet.kill()
            timings: list[float] = []

            async def post() -> httpx.Response:
                reply, took = await timed_post(client, "/counter/b/increment")
                timings.append(took)
                return reply

            def refused_with_reason(reply: httpx.Response) -> bool:
                return reply.status_code == 503 and "raylet" in reply.json()["message"]

            reply = await poll(post, refused_with_reason, timeout=60)
            assert reply.json()["error"] == "unavailable" and reply.json()["retryable"]
            # A host that dies now cannot be restarted: its calls are refused the same way.
            kill_all(host_processes(cluster_processes(own_cluster)))
            for _ in range(3):
                reply = await post()
                assert refused_with_reason(reply), reply.text
            assert max(timings) < CALL_BOUND_S, timings
        assert server.proc is not None and server.proc.poll() is None, "serve keeps serving"
        assert "lost the Ray cluster: this node's raylet" in server.output()
    finally:
        server.stop()


async def test_serve_reports_a_lost_gcs_and_rejoins_the_cluster_when_it_is_back(
    app_copy: Callable[[str], Path], tmp_path: Path, own_cluster: RayCluster
) -> None:
    server = serve(app_copy("counter"), own_cluster, tmp_path)
    restarted: RayCluster | None = None
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            (gcs,) = named(cluster_processes(own_cluster), "gcs_server")
            gcs.kill()
            # Reported in the log; no host has a link yet, so every call needs the cluster.
            await poll(as_async(server.output), lambda out: "lost the Ray cluster" in out, 60)

            async def post() -> tuple[httpx.Response, float]:
                return await timed_post(client, "/counter/a/increment")

            reply, _ = await poll(
                post,
                lambda r: r[0].status_code == 503 and "GCS" in r[0].json()["message"],
                timeout=60,
            )
            assert "raydo keeps retrying" in reply.json()["message"]
            _, took = await post()
            assert took < CALL_BOUND_S
            # The operator starts the cluster again at the same address.
            own_cluster.stop()
            restarted = RayCluster(make_temp_dir("rdf-"), port=own_cluster.port)
            restarted.start(same_port=True)
            reply, _ = await poll(post, lambda r: r[0].status_code == 200, timeout=120)
            assert reply.json()["value"] == 1
        output = server.output()
        assert "lost the Ray cluster: the Ray cluster's GCS" in output
        assert "rejoined the Ray cluster" in output
        assert server.proc is not None and server.proc.poll() is None
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()
