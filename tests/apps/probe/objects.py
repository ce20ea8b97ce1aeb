"""Objects that expose the runtime's guarantees to tests."""

import asyncio
import os
from typing import Any

from raydo import DurableObject


class Probe(DurableObject):
    constructed = 0

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        Probe.constructed += 1
        self.instance_events = 0

    async def increment(self) -> int:
        n: int = self.ctx.storage.get("n", 0)
        await asyncio.sleep(0)  # a turn must stay exclusive across awaits
        self.ctx.storage.put("n", n + 1)
        return n + 1

    async def append(self, item: int) -> None:
        items: list[int] = self.ctx.storage.get("items", [])
        items.append(item)
        self.ctx.storage.put("items", items)

    async def items(self) -> list[int]:
        items: list[int] = self.ctx.storage.get("items", [])
        return items

    async def seen(self) -> int:
        self.instance_events += 1
        return self.instance_events

    async def fail_after_write(self) -> None:
        self.ctx.storage.put("n", -1000)
        raise RuntimeError("failed on purpose")

    async def value(self) -> int:
        n: int = self.ctx.storage.get("n", 0)
        return n

    async def sleep(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "slept"

    async def call_peer(self, peer: str) -> list[str]:
        """A -> B -> A: B calls back into this object inside the same call chain."""
        self.ctx.storage.put("before", True)
        reply: str = await self.env.PROBE.get_by_name(peer).call_back(self.ctx.id.name)
        return [reply, await self.whoami()]

    async def call_back(self, caller: str) -> str:
        return str(await self.env.PROBE.get_by_name(caller).whoami())

    async def whoami(self) -> str:
        return str(self.ctx.id.name)

    async def pid(self) -> int:
        return os.getpid()
