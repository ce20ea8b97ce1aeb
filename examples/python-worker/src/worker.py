"""A Python Worker written as Cloudflare's docs write it: a Default entrypoint with fetch and
scheduled handlers, a Durable Object with storage and SQL, D1, KV and static assets."""

from typing import Any
from urllib.parse import urlparse

from workers import DurableObject, Response, WorkerEntrypoint


class Counter(DurableObject):
    """One counter per name, keeping a log of its hits in its own SQLite."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS hits (at INTEGER)")

    async def increment(self) -> int:
        value = (await self.ctx.storage.get("value") or 0) + 1
        await self.ctx.storage.put("value", value)
        self.ctx.storage.sql.exec("INSERT INTO hits (at) VALUES (unixepoch())")
        return int(value)

    async def hits(self) -> int:
        return int(self.ctx.storage.sql.exec("SELECT count(*) AS n FROM hits").one().n)


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Response:
        path = urlparse(request.url).path
        parts = path.strip("/").split("/")
        if path == "/api/hello":
            return Response.json({"message": f"{self.env.GREETING} from a Python Worker"})
        if parts[:2] == ["api", "counter"] and len(parts) == 3:
            stub = self.env.COUNTER.getByName(parts[2])
            if request.method == "POST":
                return Response.json({"value": await stub.increment()})
            return Response.json({"hits": await stub.hits()})
        if path == "/api/guestbook":
            if request.method == "POST":
                entry = await request.json()
                insert = self.env.DB.prepare("INSERT INTO entries (name, message) VALUES (?, ?)")
                await insert.bind(entry["name"], entry["message"]).run()
                return Response.json(entry, status=201)
            rows = await self.env.DB.prepare("SELECT name, message FROM entries ORDER BY id").all()
            return Response.json(rows.results)
        if path == "/api/last-cron":
            return Response.json({"last": await self.env.CACHE.get("last-cron", {"type": "json"})})
        # Anything else is a static file of public/ (or its 404).
        asset: Response = await self.env.ASSETS.fetch(request)
        return asset

    async def scheduled(self, controller: Any, env: Any, ctx: Any) -> None:
        await env.CACHE.put("last-cron", f'{{"cron": "{controller.cron}"}}')
