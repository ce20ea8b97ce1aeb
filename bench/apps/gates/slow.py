"""bench/gates.py's slow-upstream objects: each event of a Caller awaits a 200 ms call to
another object (an Upstream, standing for an external API) before it counts itself."""

import asyncio

from raydo import DurableObject


class Caller(DurableObject):
    async def call(self, seconds: float) -> int:
        await self.env.UPSTREAM.get_by_name("api").answer(seconds)
        n: int = self.ctx.storage.get("n", 0) + 1  # read and write after the await: no
        self.ctx.storage.put("n", n)  # update is lost in either mode
        return n


class Upstream(DurableObject):
    concurrency = "gates"  # it answers every caller at once, in both rows

    async def answer(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
