"""Queues on real Ray hosts: batches, dead letters, delays and limits, and the queue's host
SIGKILLed mid-batch losing no message."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from raydo.actors import ObjectError
from raydo.bindings.queues import BROKER, OBJECTS
from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from raydo.gateway.testing import start_app
from raydo.storage import LimitExceeded
from tests.bindings.test_queues import batches, deliveries, drained, until
from tests.cluster import RayCluster
from tests.hosts import host_actor

pytestmark = pytest.mark.ray


async def test_a_host_killed_mid_batch_redelivers_the_batch_and_loses_nothing(
    app_copy: Callable[[str], Path],
    ray_cluster: RayCluster,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app_dir = kill_hosts_after(app_copy("queues"))
    spec = runtime_spec(load_config(app_dir))
    jobs = spec.id_scheme(spec.binding(OBJECTS)).from_name("jobs")

    async with start_app(app_dir, ray=True) as app:
        # The first batch (5) stalls on its first delivery; the next 5 are plain.
        stalls = [{"n": n, "do": "sleep", "seconds": 600, "until": 2} for n in range(5)]
        await app.env.JOBS.send_batch([{"body": b} for b in stalls])
        await app.env.JOBS.send_batch([{"body": {"n": n}} for n in range(5, 10)])
        await until(lambda: _started(app), "the first batch reached the handler", 60)
        host = host_actor(spec, OBJECTS, jobs.hex)
        pid = await host.pid.remote()
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        await until(lambda: drained(app, "jobs"), "every message consumed after the kill", 90)
        assert await host.pid.remote() != pid, "Ray restarted the queue's host"
        found = deliveries(await batches(app, "jobs"))
        seen = sorted({body["n"] for body, _ in found})
        assert seen == list(range(10)), "no message was lost"
        # The stalled batch came again, with its attempt counted, after the restart.
        again = [(body["n"], a) for body, a in found if a > 1]
        assert sorted(again) == [(n, 2) for n in range(5)]
        last = await batches(app, "jobs")
        assert max(at for _, _, at in last) > killed_at


async def test_batches_retries_dead_letters_delays_and_limits_on_ray_hosts(
    app_copy: Callable[[str], Path],
    ray_cluster: RayCluster,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app_dir = kill_hosts_after(app_copy("queues"))

    async with start_app(app_dir, ray=True) as app:
        sent = time.time()
        await app.env.BATCHED.send_batch([{"body": {"n": n}} for n in range(8)])
        await app.env.JOBS.send({"n": "poison", "do": "raise"})
        await app.env.JOBS.send({"n": "later"}, delay_seconds=1)
        with pytest.raises(LimitExceeded):
            await app.env.JOBS.send("x" * 200_000)
        with pytest.raises(ObjectError):
            broker = getattr(app.gateway.placement.platform_env, BROKER)  # type: ignore[union-attr]
            await broker.stub("jobs").enqueue([["../x", b"", 0, None]])
        for queue in ("batched", "jobs"):
            await until(partial(drained, app, queue), f"{queue} consumed", 60)
        await until(lambda: _has(app, "jobs-dlq"), "the poison dead-lettered", 60)
        batched = await batches(app, "batched")
        assert [[m[1]["n"] for m in messages] for _, messages, _ in batched] == [
            [0, 1, 2, 3],
            [4, 5, 6, 7],
        ]
        jobs = deliveries(await batches(app, "jobs"))
        assert [a for body, a in jobs if body["n"] == "poison"] == [1, 2, 3]
        dead = deliveries(await batches(app, "jobs-dlq"))
        assert dead == [({"n": "poison", "do": "raise"}, 1)]
        later = [
            at for _, messages, at in await batches(app, "jobs") if messages[0][1]["n"] == "later"
        ]
        assert later and later[0] >= sent + 1 - 0.01


async def _has(app: object, queue: str) -> bool:
    return bool(await batches(app, queue))  # type: ignore[arg-type]


async def _started(app: object) -> bool:
    return bool(await batches(app, "jobs"))  # type: ignore[arg-type]
