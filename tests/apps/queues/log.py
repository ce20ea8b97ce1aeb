"""Every delivery the consumer saw, in order: [queue, [[id, body, attempts], ...], time]."""

from __future__ import annotations

from typing import Any

from raydo import DurableObject


class Log(DurableObject):
    async def record(self, queue: str, messages: list[Any], at: float) -> None:
        n = self.ctx.storage.get("n", 0)
        self.ctx.storage.put_many({"n": n + 1, f"batch:{n:08d}": [queue, messages, at]})

    async def env_seen(self) -> list[Any]:
        """What an object's ``env`` shows: its names, and the internal ones it reaches."""
        internal = [n for n in ("_QUEUE_BROKER", "_QUEUES") if getattr(self.env, n, None)]
        return [dir(self.env), internal]

    async def batches(self) -> list[Any]:
        return [value for _, value in self.ctx.storage.list(prefix="batch:").items()]
