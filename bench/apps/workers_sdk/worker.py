"""The Python Workers twin of ``bench/apps/workers_native``: the same two routes."""

from typing import Any

from workers import DurableObject, Response, WorkerEntrypoint


class Counter(DurableObject):
    async def increment(self) -> int:
        n = (await self.ctx.storage.get("n") or 0) + 1
        await self.ctx.storage.put("n", n)
        return int(n)


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Response:
        path = request.url.partition("://")[2].partition("/")[2]
        if path == "hello":
            return Response("Hello World!")
        name = path.split("/")[1]
        return Response.json({"value": await self.env.COUNTER.getByName(name).increment()})
