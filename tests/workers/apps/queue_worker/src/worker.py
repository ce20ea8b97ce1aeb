# A Worker with a fetch handler that sends to a queue and a queue handler that consumes it,
# as Cloudflare's Python Queues docs write them (with type annotations, as this repository's
# tests are typed).
from typing import Any

from workers import DurableObject, Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Response:
        if request.method == "PUT":  # several at once, as the platform's sendBatch takes them
            bodies = await request.json()
            await self.env.JOBS.sendBatch(
                [{"body": b, "delaySeconds": 0, "contentType": "json"} for b in bodies]
            )
            return Response.json({"sent": bodies}, status=202)
        if request.method == "POST":
            body = await request.json()
            await self.env.JOBS.send(body)
            return Response.json({"sent": body}, status=202)
        return Response.json(await self.env.LOG.getByName("all").entries())

    async def queue(self, batch: Any) -> None:
        log = self.env.LOG.getByName("all")
        for message in batch.messages:
            if message.body.get("fail") and message.attempts == 1:
                message.retry(delaySeconds=0)
                continue
            await log.add(f"{batch.queue}:{message.body['n']}:{message.attempts}")
            message.ack()
        self.ctx.waitUntil(log.add("batch done"))


class Log(DurableObject):
    async def add(self, entry: str) -> None:
        entries = await self.ctx.storage.get("entries") or []
        await self.ctx.storage.put("entries", [*entries, entry])

    async def entries(self) -> list[str]:
        return list(await self.ctx.storage.get("entries") or [])
