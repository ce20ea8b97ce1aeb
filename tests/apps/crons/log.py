from typing import Any

from raydo import DurableObject


class Log(DurableObject):
    async def record(self, cron: str, when: int) -> None:
        runs: list[Any] = self.ctx.storage.get("runs", [])
        self.ctx.storage.put("runs", [*runs, [cron, when]])

    async def runs(self) -> list[Any]:
        found: list[Any] = self.ctx.storage.get("runs", [])
        return found

    async def fail(self, on: bool) -> None:
        self.ctx.storage.put("failing", on)

    async def failing(self) -> bool:
        return bool(self.ctx.storage.get("failing", False))
