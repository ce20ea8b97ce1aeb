"""Objects with alarms, for the alarm and lifecycle tests."""

import asyncio
import time
from typing import Any

from raydo import DurableObject


class Clock(DurableObject):
    constructed = 0

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        Clock.constructed += 1
        self.memory = 0

    async def set_in(self, ms: float) -> int | None:
        self.ctx.storage.set_alarm(time.time() * 1000 + ms)
        return self.ctx.storage.get_alarm()

    async def set_at(self, when: Any) -> int | None:
        self.ctx.storage.set_alarm(when)
        return self.ctx.storage.get_alarm()

    async def get_alarm(self) -> int | None:
        return self.ctx.storage.get_alarm()

    async def delete_alarm(self) -> None:
        self.ctx.storage.delete_alarm()

    async def plan(
        self, failures: int = 0, again_in_ms: float | None = None, abort: str | None = None
    ) -> None:
        """How the next alarm runs should behave."""
        self.ctx.storage.put("plan", {"failures": failures, "again": again_in_ms, "abort": abort})

    async def runs(self) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.ctx.storage.get("runs", [])
        return runs

    async def alarm(self, info: Any) -> None:
        runs = self.ctx.storage.get("runs", [])
        plan = self.ctx.storage.get("plan", {"failures": 0, "again": None, "abort": None})
        runs.append(
            {
                "retry_count": info.retry_count,
                "is_retry": info.is_retry,
                "scheduled_time": info.scheduled_time,
                "at": time.time() * 1000,
                "alarm_inside": self.ctx.storage.get_alarm(),
            }
        )
        # Runs are recorded outside the transaction that may fail, as a log would be.
        self.ctx.storage.put("runs", runs)
        self.ctx.storage.commit()
        if plan["abort"] is not None:
            self.ctx.abort(plan["abort"], retry_alarm=False)
        if plan["failures"] > 0:
            plan["failures"] -= 1
            self.ctx.storage.put("plan", plan)
            self.ctx.storage.commit()
            raise RuntimeError("alarm failed on purpose")
        if plan["again"] is not None:
            self.ctx.storage.set_alarm(time.time() * 1000 + plan["again"])
            plan["again"] = None
            self.ctx.storage.put("plan", plan)

    async def remember(self) -> int:
        self.memory += 1
        return self.memory

    async def write_then_abort(self, retry_alarm: bool = True) -> None:
        self.ctx.storage.put("aborted-write", True)
        self.ctx.abort("stop now", retry_alarm=retry_alarm)

    async def value(self, key: str) -> Any:
        return self.ctx.storage.get(key)

    async def guarded(self, fail: bool) -> str:
        async def critical() -> str:
            self.ctx.storage.put("guarded", True)
            if fail:
                raise ValueError("critical section failed")
            return "ok"

        try:
            return await self.ctx.block_concurrency_while(critical)
        except ValueError:
            return "caught"

    async def background(self, seconds: float) -> None:
        async def later() -> None:
            await asyncio.sleep(seconds)

        self.ctx.wait_until(later())

    async def wipe(self) -> None:
        self.ctx.storage.delete_all()


class Plain(DurableObject):
    """No alarm() handler."""

    async def try_alarm(self) -> str:
        try:
            self.ctx.storage.set_alarm(time.time() * 1000 + 1000)
        except TypeError as exc:
            return str(exc)
        return "set"
