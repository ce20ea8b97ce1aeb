"""Objects that break the time limits (and one that does not), for the limits tests.

Every offender writes ``"mark"`` first, so a test can check that nothing of its stopped event
was committed.
"""

import asyncio
import time
from typing import Any

from raydo import DurableObject

RUNAWAY_CTE = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
)


class Runaway(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.constructed_at = time.time()

    async def ping(self) -> str:
        return "pong"

    async def add(self, by: int = 1) -> int:
        n: int = self.ctx.storage.get("n", 0) + by
        self.ctx.storage.put("n", n)
        return n

    async def value(self, key: str) -> Any:
        return self.ctx.storage.get(key)

    async def spin(self) -> None:
        self.ctx.storage.put("mark", "spin")
        while True:
            pass

    async def spin_swallowing(self) -> str:
        """Catches everything the limit raises in it, and returns as if it was fine."""
        self.ctx.storage.put("mark", "swallowing")
        try:
            while True:
                pass
        except BaseException:  # noqa: BLE001 - the point of this object
            return "got away"

    async def runaway_sql(self) -> Any:
        self.ctx.storage.put("mark", "sql")
        return self.ctx.storage.sql.exec(RUNAWAY_CTE).one()

    async def runaway_sql_caught(self) -> str:
        """Catches the SQL error of its interrupted query."""
        self.ctx.storage.put("mark", "sql caught")
        try:
            self.ctx.storage.sql.exec(RUNAWAY_CTE).one()
        except Exception as exc:  # noqa: BLE001 - the point of this object
            return f"caught {type(exc).__name__}"
        return "finished"

    async def sleep(self, seconds: float) -> str:
        self.ctx.storage.put("mark", "sleep")
        await asyncio.sleep(seconds)
        return "woke"

    async def block(self, seconds: float) -> str:
        """Holds the host's loop without using CPU (a blocking call)."""
        self.ctx.storage.put("mark", "block")
        time.sleep(seconds)
        return "unblocked"

    async def busy_steps(self, steps: int, step_seconds: float) -> int:
        """Uses CPU in steps shorter than any limit, yielding between them."""
        for _ in range(steps):
            end = time.thread_time() + step_seconds
            while time.thread_time() < end:
                pass
            await asyncio.sleep(0)
        return steps
