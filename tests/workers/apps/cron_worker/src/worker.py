# A Worker whose scheduled handler runs on a cron trigger, written as Cloudflare's Scheduled
# Handler page writes it (with type annotations, as this repository's tests are typed).
from typing import Any

from workers import DurableObject, Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Response:
        return Response.json(await self.env.LOG.getByName("log").runs())

    async def scheduled(self, controller: Any, env: Any, ctx: Any) -> None:
        # controller.cron contains the cron pattern that triggered this event
        log = env.LOG.getByName("log")
        await log.record(f"{controller.type} {controller.cron}", controller.scheduledTime)
        ctx.waitUntil(log.record("waited", controller.scheduledTime))


class Log(DurableObject):
    async def record(self, what: str, at: int) -> None:
        runs = await self.ctx.storage.get("runs") or []
        await self.ctx.storage.put("runs", [*runs, [what, at]])

    async def runs(self) -> list[Any]:
        return list(await self.ctx.storage.get("runs") or [])
