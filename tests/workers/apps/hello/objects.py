# Durable Objects with the platform's Python face (see Cloudflare's Durable Objects docs),
# with type annotations, as this repository's tests are typed.
from typing import Any

from workers import (
    DurableObject,
    Request,
    Response,
    WebSocket,
    WebSocketPair,
    WebSocketRequestResponsePair,
)


class Counter(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.ctx.storage.sql.exec(
            "CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, path TEXT)"
        )

    async def increment(self, by: int = 1) -> int:
        value = (await self.ctx.storage.get("value") or 0) + by
        await self.ctx.storage.put("value", value)
        return value

    async def say_hello(self, name: str) -> str:
        result = self.ctx.storage.sql.exec("SELECT 'Hello, ' || ? || '!' as greeting", name).one()
        return str(result.greeting)

    async def record(self, path: str) -> list[str]:
        self.ctx.storage.sql.exec("INSERT INTO hits (path) VALUES (?)", path)
        rows = self.ctx.storage.sql.exec("SELECT id, path FROM hits ORDER BY id").toArray()
        return [row["path"] for row in rows]

    async def storage_tour(self) -> dict[str, Any]:
        storage = self.ctx.storage
        await storage.put({"list:a": 1, "list:b": 2, "other": 3})
        many = await storage.get(["list:a", "list:b", "missing"])
        listed = await storage.list({"prefix": "list:"})
        deleted = await storage.delete(["list:a", "missing"])

        async def body(txn: Any) -> Any:
            await txn.put("in_txn", "kept")
            return await txn.get("in_txn")

        in_txn = await storage.transaction(body)

        async def undone(txn: Any) -> None:
            await txn.put("rolled", "back")
            txn.rollback()

        await storage.transaction(undone)
        storage.kv.put("sync", "yes")
        return {
            "many": many,
            "listed": listed,
            "deleted": deleted,
            "in_txn": in_txn,
            "rolled": await storage.get("rolled"),
            "sync": storage.kv.get("sync"),
            "id_length": len(self.ctx.id.toString()),
            "name": self.ctx.id.name,
        }

    async def storage_rest(self) -> dict[str, Any]:
        """deleteAlarm, iterating sql.exec(...), blockConcurrencyWhile and deleteAll."""
        storage = self.ctx.storage
        await storage.put({"a": 1, "b": 2})
        await storage.setAlarm(4_000_000_000_000)
        await storage.deleteAlarm()
        storage.sql.exec("INSERT INTO hits (path) VALUES (?), (?)", "/x", "/y")
        paths = [row.path for row in storage.sql.exec("SELECT path FROM hits ORDER BY id")]

        async def guarded() -> str:
            await storage.put("guarded", True)
            return "inside"

        guarded = await self.ctx.blockConcurrencyWhile(guarded)
        before = await storage.list()
        await storage.deleteAll()
        tables = storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'hits'")
        return {
            "alarm": await storage.getAlarm(),
            "paths": paths,
            "guarded": guarded,
            "before": before,
            "after": await storage.list(),
            "tables": tables.toArray(),
        }

    async def put_then_abort(self) -> None:
        await self.ctx.storage.put("aborted", "written")
        self.ctx.abort("on purpose")

    async def read(self, key: str) -> Any:
        return await self.ctx.storage.get(key)

    async def schedule(self, when_ms: int) -> int | None:
        await self.ctx.storage.setAlarm(when_ms)
        alarm: int | None = await self.ctx.storage.getAlarm()
        return alarm

    async def alarm(self) -> None:
        await self.ctx.storage.put("alarmed", (await self.ctx.storage.get("alarmed") or 0) + 1)

    async def alarmed(self) -> list[Any]:
        return [await self.ctx.storage.get("alarmed"), await self.ctx.storage.getAlarm()]

    async def fetch(self, request: Request) -> Response:
        value = await self.increment()
        return Response.json({"value": value, "method": request.method, "url": request.url})


class Room(DurableObject):
    async def fetch(self, request: Request) -> Response:
        if request.headers.get("Upgrade") != "websocket":
            return Response("Durable Object expected Upgrade: websocket", status=426)
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server, ["room", request.url.rsplit("/", 1)[-1]])
        self.ctx.setWebSocketAutoResponse(WebSocketRequestResponsePair("ping", "pong"))
        server.serializeAttachment({"joined": len(self.ctx.getWebSockets())})
        return Response(None, status=101, web_socket=client)

    async def webSocketMessage(self, ws: WebSocket, message: str | bytes) -> None:
        attachment = ws.deserializeAttachment()
        if message == "tags":
            pair = self.ctx.getWebSocketAutoResponse()
            assert pair is not None
            ws.send(f"{self.ctx.getTags(ws)} {pair.request}->{pair.response}")
            return
        for other in self.ctx.getWebSockets("room"):
            other.send(f"{attachment['joined']}: {message!s}")

    async def webSocketClose(self, ws: WebSocket, code: int, reason: str, was_clean: bool) -> None:
        await self.ctx.storage.put("closed", code)

    async def closed(self) -> int | None:
        code: int | None = await self.ctx.storage.get("closed")
        return code


class Loader(DurableObject):
    """The docs' pattern: the constructor loads state inside blockConcurrencyWhile, without
    awaiting it (a constructor cannot), and no event runs before it is done."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.loaded: Any = None
        self.ctx.blockConcurrencyWhile(self.load)

    async def load(self) -> None:
        import asyncio

        await asyncio.sleep(0.2)  # a slow load: an event that ran early would see None
        self.loaded = await self.ctx.storage.get("state") or "fresh"
        await self.ctx.storage.put("state", "stored")

    async def state(self) -> Any:
        return self.loaded
