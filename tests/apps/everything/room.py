"""An object that uses its storage every way (key-value, SQL, an alarm, WebSockets), and the
queue's consumer, which records each message in a room."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from raydo import DurableObject
from raydo.bindings.queues import MessageBatch


class Room(DurableObject):
    async def fetch(self, request: Request) -> Response:
        if request.headers.get("upgrade", "").lower() == "websocket":
            return self.ctx.accept_websocket(request, tags=("all",))
        body = await request.body()
        self.ctx.storage.put("last", body.decode(errors="replace")[:100])
        return JSONResponse({"last": self.ctx.storage.get("last")})

    async def touch(self, text: str) -> int:
        """Write through every part of the object's storage; the number of notes."""
        storage = self.ctx.storage
        storage.sql.exec("CREATE TABLE IF NOT EXISTS notes (text TEXT)")
        storage.sql.exec("INSERT INTO notes VALUES (?)", text)
        storage.put("n", storage.get("n", 0) + 1)
        storage.set_alarm(4_000_000_000_000)  # far away: only the index and the row matter
        count: int = storage.sql.exec("SELECT count(*) AS n FROM notes").one()["n"]
        return count

    async def alarm(self, info: Any) -> None:
        self.ctx.storage.put("rang", info.retry_count)

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        ws.send(message)


async def consume(batch: MessageBatch, env: Any) -> None:
    for message in batch.messages:
        await env.ROOM.get_by_name("consumer").touch(str(message.body))
