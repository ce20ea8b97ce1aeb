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
from raydo.gateway.cli_queues import queue_counts
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


CRASHY = """
[[queues.producers]]
binding = "CRASHY"
queue = "crashy"

[[queues.consumers]]
queue = "crashy"
handler = "consumer:consume_one_by_one"
max_batch_size = 10
max_batch_timeout = 0
max_retries = 2
retry_delay = 0.05
dead_letter_queue = "crashy-dlq"

[[queues.consumers]]
queue = "crashy-dlq"
handler = "consumer:consume_dead"
max_batch_timeout = 0
"""


def crashy_app(app_copy: Callable[[str], Path]) -> Path:
    """The queues app with ``crashy``: batches of 10, handled one by one, whose ``"crash"``
    messages kill the consumer's host process."""
    app_dir = app_copy("queues")
    with (app_dir / "raydo.toml").open("a") as toml:
        toml.write(CRASHY)
    return app_dir


async def test_a_message_that_kills_its_host_is_isolated_and_alone_dead_lettered(
    app_copy: Callable[[str], Path],
    ray_cluster: RayCluster,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app_dir = kill_hosts_after(crashy_app(app_copy))
    spec = runtime_spec(load_config(app_dir))
    crashy = spec.id_scheme(spec.binding(OBJECTS)).from_name("crashy")

    async with start_app(app_dir, ray=True) as app:
        host = host_actor(spec, OBJECTS, crashy.hex)
        first_pid = await host.pid.remote()
        bodies = [{"n": n, "do": "crash" if n == 5 else "ok"} for n in range(10)]
        await app.env.CRASHY.send_batch([{"body": b} for b in bodies])
        await until(lambda: _has(app, "crashy-dlq"), "the poisoned message dead-lettered", 120)
        await until(lambda: drained(app, "crashy"), "every other message handled", 60)
        assert await host.pid.remote() != first_pid, "the poisoned message killed its host"

        handled = deliveries(await batches(app, "crashy"))
        seen = {body["n"] for body, _ in handled}
        assert seen == set(range(10)), "every message reached the handler"
        # The five before it were acknowledged before the crash: never delivered again.
        for n in range(5):
            assert [a for body, a in handled if body["n"] == n] == [1]
        # The four after it were never handled in the crashed batch; each came once, alone.
        for n in range(6, 10):
            assert [a for body, a in handled if body["n"] == n] == [2]
        # The poisoned one: in the batch, then alone until its own attempts ran out.
        assert [a for body, a in handled if body["n"] == 5] == [1, 2, 3, 4]
        # One batch of ten, then every undecided message alone: batch-mates were never
        # charged the poisoned one's attempts.
        assert await batch_sizes(app) == [10] + [1] * 7
        dead = deliveries(await batches(app, "crashy-dlq"))
        assert dead == [({"n": 5, "do": "crash"}, 1)], "exactly the poisoned one"
        counts = queue_counts(app.config, "crashy")
        assert (counts.acked, counts.dead_lettered) == (9, 1)


async def test_decisions_made_before_a_crash_hold_and_only_undecided_come_again(
    app_copy: Callable[[str], Path],
    ray_cluster: RayCluster,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app_dir = kill_hosts_after(crashy_app(app_copy))

    async with start_app(app_dir, ray=True) as app:
        bodies = [
            {"n": 0},
            {"n": 1},
            {"n": 2, "do": "retry", "delay": 0.5, "until": 2},
            {"n": 3, "do": "crash", "until": 2},  # kills its host on its first delivery only
            {"n": 4},
        ]
        await app.env.CRASHY.send_batch([{"body": b} for b in bodies])
        await until(lambda: drained(app, "crashy"), "the batch consumed after the crash", 120)
        found = await batches(app, "crashy")
        handled = deliveries(found)
        by_n: dict[int, list[int]] = {}
        for body, attempts in handled:
            by_n.setdefault(body["n"], []).append(attempts)
        assert by_n[0] == [1] and by_n[1] == [1], "acknowledged before the crash: not again"
        assert by_n[2] == [1, 2], "its retry held: once more, after its delay, then acked"
        assert by_n[3] == [1, 2] and by_n[4] == [2], "the undecided came again"
        first = {m[1]["n"]: at for _, messages, at in found for m in messages if m[2] == 1}
        again = {m[1]["n"]: at for _, messages, at in found for m in messages if m[2] == 2}
        assert again[2] >= first[2] + 0.5 - 0.01, "the retry's delay was kept"
        # After the crash the undecided went one per batch; the retried one on its own time.
        assert await batch_sizes(app) == [5, 1, 1, 1]
        assert not await _has(app, "crashy-dlq")
        counts = queue_counts(app.config, "crashy")
        assert (counts.acked, counts.retried, counts.dead_lettered) == (5, 1, 0)


async def batch_sizes(app: object) -> list[int]:
    return [messages[0][0] for _, messages, _ in await batches(app, "crashy#size")]  # type: ignore[arg-type]


async def _has(app: object, queue: str) -> bool:
    return bool(await batches(app, queue))  # type: ignore[arg-type]


async def _started(app: object) -> bool:
    return bool(await batches(app, "jobs"))  # type: ignore[arg-type]
