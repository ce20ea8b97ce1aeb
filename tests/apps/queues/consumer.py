"""The test consumer: each message's body says what to do with it.

``{"do": "ok"}`` (or any other body) is acknowledged implicitly; ``"raise"`` makes the handler
raise; ``"retry"`` calls ``msg.retry(delay_seconds=body["delay"])``; ``"ack"``, ``"ack_all"``,
``"retry_all"`` do that; ``"sleep"`` sleeps ``body["seconds"]``; ``"env"`` records what the
handler's ``env`` shows (as queue ``"env-seen"``). With ``"until": n`` the action
applies only to attempts before the n-th (later attempts are acknowledged).

:func:`consume_one_by_one` handles a batch message by message, the way a careful consumer
does: it records the batch's size, then each message, then acts on it (``"crash"`` kills
its own host process, as a poisoned message that crashes a library would; ``"retry"``
retries it), else acknowledges it.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from raydo.bindings.queues import MessageBatch


async def consume(batch: MessageBatch, env: Any) -> None:
    log = env.LOG.get_by_name("log")
    await log.record(batch.queue, [[m.id, m.body, m.attempts] for m in batch.messages], time.time())
    fail = False
    for message in batch.messages:
        body = message.body if isinstance(message.body, dict) else {}
        if message.attempts >= body.get("until", 1_000_000):
            continue
        action = body.get("do", "ok")
        if action == "raise":
            fail = True
        elif action == "retry":
            message.retry(delay_seconds=body.get("delay"))
        elif action == "ack":
            message.ack()
        elif action == "ack_all":
            batch.ack_all()
        elif action == "retry_all":
            batch.retry_all(delay_seconds=body.get("delay"))
        elif action == "sleep":
            await asyncio.sleep(body["seconds"])
        elif action == "env":
            internal = [n for n in ("_QUEUE_BROKER", "_QUEUES") if getattr(env, n, None)]
            await log.record("env-seen", [dir(env), internal], time.time())
    if fail:
        raise RuntimeError("a poisoned message")


async def consume_dead(batch: MessageBatch, env: Any) -> None:
    """The dead-letter queue's consumer: records what arrived."""
    log = env.LOG.get_by_name("log")
    await log.record(batch.queue, [[m.id, m.body, m.attempts] for m in batch.messages], time.time())


async def consume_one_by_one(batch: MessageBatch, env: Any) -> None:
    log = env.LOG.get_by_name("log")
    # The batch's size, under a queue name of its own (so deliveries are counted apart).
    await log.record(f"{batch.queue}#size", [[len(batch.messages)]], time.time())
    for message in batch.messages:
        await log.record(batch.queue, [[message.id, message.body, message.attempts]], time.time())
        body = message.body if isinstance(message.body, dict) else {}
        action = body.get("do", "ok")
        if message.attempts >= body.get("until", 1_000_000):
            action = "ok"
        if action == "crash":
            os._exit(70)  # the host process dies here, mid-batch, without unwinding
        elif action == "retry":
            message.retry(delay_seconds=body.get("delay"))
        else:
            message.ack()
