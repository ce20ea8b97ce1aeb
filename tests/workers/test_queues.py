"""A Worker's ``queue(batch)`` handler on a ``Default(WorkerEntrypoint)``, fed by the
Worker's own producer binding, configured only by ``wrangler.jsonc``."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from raydo.bindings.queues import Message, MessageBatch
from raydo.gateway.testing import start_app
from workers import WorkerEntrypoint
from workers._env import worker_env
from workers._handlers import event_handler

from ..polling import poll

APP = Path(__file__).parent / "apps" / "queue_worker"


async def test_a_worker_consumes_what_it_sends_with_retries_and_wait_until() -> None:
    async with start_app(APP) as app:
        for body in ({"n": 1}, {"n": 2, "fail": True}):
            sent = await app.http.post("/", json=body)
            assert (sent.status_code, sent.json()) == (202, {"sent": body})

        async def entries() -> list[str]:
            return list((await app.http.get("/")).json())

        seen = await poll(entries, lambda e: "jobs:1:1" in e and "jobs:2:2" in e)
        # The message retried on its first delivery is taken on its second, and every batch
        # ran its ctx.waitUntil work.
        assert "jobs:2:1" not in seen
        assert "batch done" in seen


async def test_send_batch_takes_the_platforms_message_keys() -> None:
    async with start_app(APP) as app:
        sent = await app.http.put("/", json=[{"n": 7}, {"n": 8}])
        assert sent.status_code == 202

        async def entries() -> list[str]:
            return list((await app.http.get("/")).json())

        seen = await poll(entries, lambda e: "jobs:7:1" in e and "jobs:8:1" in e)
        assert "jobs:7:1" in seen
        queue = worker_env(app.env).JOBS
        with pytest.raises(TypeError, match="contentType must be one of"):
            await queue.sendBatch([{"body": 1, "contentType": "xml"}])
        with pytest.raises(TypeError, match="unknown keys \\['priority'\\]"):
            await queue.sendBatch([{"body": 1, "priority": 2}])
        await queue.send({"n": 9}, {"contentType": "json", "delaySeconds": 0})
        await queue.send({"n": 10}, delaySeconds=0)
        assert await poll(entries, lambda e: "jobs:9:1" in e and "jobs:10:1" in e)
        with pytest.raises(TypeError, match="send: contentType must be one of"):
            await queue.send(1, {"contentType": "xml"})
        with pytest.raises(TypeError, match="unexpected keyword argument 'priority'"):
            await queue.send(1, {"priority": 2})
        with pytest.raises(TypeError, match="options is a dict, not int"):
            await queue.send(1, 2)


@pytest.fixture
def worker_module() -> Iterator[types.ModuleType]:
    """A fresh module for a Worker class made in a test (its ``queue`` lands there)."""
    module = types.ModuleType("tests.workers.made_up_worker")
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def _batch() -> MessageBatch:
    now = datetime.now(UTC)
    return MessageBatch("jobs", [Message(str(i), {"i": i}, now, 1) for i in range(4)])


async def test_a_default_worker_with_queue_gets_its_module_level_handler(
    worker_module: types.ModuleType,
) -> None:
    async def queue(self: WorkerEntrypoint, batch: Any) -> None:
        assert batch.queue == "jobs" and batch.messages[0].body == {"i": 0}
        first, second, third, _ = batch.messages
        first.ack()
        second.retry(delaySeconds=5)
        third.retry({"delaySeconds": 7})
        batch.retryAll(delay_seconds=9)

    made = {"__module__": worker_module.__name__, "queue": queue}
    # Only Default is the Worker: another class with a queue handler puts nothing there.
    type("Other", (WorkerEntrypoint,), made)
    assert not hasattr(worker_module, "queue")
    type("Default", (WorkerEntrypoint,), made)
    assert worker_module.queue.__qualname__ == "Default.queue"
    batch = _batch()
    await worker_module.queue(batch, {})
    assert batch.outcome(failed=False) == (["0"], [("1", 5.0), ("2", 7.0), ("3", 9.0)])


async def test_a_module_queue_function_wins_and_bad_retry_options_are_refused(
    worker_module: types.ModuleType,
) -> None:
    def own(batch: MessageBatch, env: Any) -> None: ...

    worker_module.queue = own  # type: ignore[attr-defined]

    async def queue(self: WorkerEntrypoint, batch: Any) -> None:
        batch.messages[0].retry(delay=5)

    cls = type(
        "Default", (WorkerEntrypoint,), {"__module__": worker_module.__name__, "queue": queue}
    )
    assert worker_module.queue is own
    with pytest.raises(TypeError, match="retry\\(\\) takes delaySeconds only, not delay"):
        await event_handler(cls, "queue")(_batch(), {})
