"""Objects for the edge cases of turns found in review."""

import asyncio
from typing import Any

from raydo import DurableObject


class Edgy(DurableObject):
    active = 0
    most_active = 0
    background_error = ""  # what refused a write made outside any event

    async def fire_and_forget(self, peer: str) -> None:
        async def later() -> None:
            await asyncio.sleep(0.05)
            await self.env.EDGY.get_by_name(peer).ping()

        self.ctx.wait_until(asyncio.ensure_future(later()))  # a Task: it keeps this context

    async def slow_write_then_fail(self) -> None:
        self.ctx.storage.put("x", "should roll back")
        await asyncio.sleep(0.1)
        raise RuntimeError("fails after the stale task ran")

    async def ping(self) -> str:
        return "pong"

    async def value(self, key: str) -> Any:
        return self.ctx.storage.get(key)

    async def write_later(self) -> None:
        async def later() -> None:
            await asyncio.sleep(0.02)
            try:
                self.ctx.storage.put("bg", 1)
                self.ctx.storage.put("bg_error", None)
            except Exception as exc:  # noqa: BLE001 - recorded for the test
                Edgy.background_error = str(exc)

        self.ctx.wait_until(later())

    async def two_calls_at_once(self, peer: str) -> int:
        stub = self.env.EDGY.get_by_name(peer)
        slow = asyncio.ensure_future(stub.busy(0.1))
        await asyncio.sleep(0.02)
        await stub.busy(0.0)
        await slow
        return Edgy.most_active

    async def busy(self, seconds: float) -> None:
        Edgy.active += 1
        Edgy.most_active = max(Edgy.most_active, Edgy.active)
        try:
            await asyncio.sleep(seconds)
        finally:
            Edgy.active -= 1


class Filer(DurableObject):
    async def fetch(self, request: Any) -> Any:
        from starlette.responses import FileResponse

        return FileResponse(__file__)
