"""A chat room: the seed article's ChatRoom, with names, join and leave notices and history.

Each room is one object. Its sockets hibernate: the room may be evicted between messages
while everyone stays connected; names live in each socket's attachment, history in the
room's own SQLite table.
"""

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from raydo import DurableObject

HISTORY = 50
MAX_NAME = 32
MAX_TEXT = 2000


class ChatRoom(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec(
            "CREATE TABLE IF NOT EXISTS messages ("
            " id INTEGER PRIMARY KEY, name TEXT NOT NULL, text TEXT NOT NULL, at REAL NOT NULL)"
        )

    async def fetch(self, request: Request) -> Response:
        name = request.query_params.get("name", "").strip()
        if not name or len(name) > MAX_NAME:
            return JSONResponse({"error": f"a name of 1 to {MAX_NAME} characters"}, 400)
        response = self.ctx.accept_websocket(request, tags=["chat"])
        joined = response.websocket
        joined.serialize_attachment({"name": name})
        joined.send(json.dumps({"type": "history", "messages": self.history()}))
        self.broadcast({"type": "join", "name": name, "at": time.time()}, exclude=joined)
        return response

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        if isinstance(message, bytes):
            return
        try:
            text = str(json.loads(message)["text"])[:MAX_TEXT]
        except (ValueError, KeyError, TypeError):
            ws.send(json.dumps({"type": "error", "error": 'send {"text": "..."}'}))
            return
        name = (ws.deserialize_attachment() or {}).get("name", "?")
        at = time.time()
        self.ctx.storage.sql.exec(
            "INSERT INTO messages (name, text, at) VALUES (?, ?, ?)", name, text, at
        )
        self.ctx.storage.sql.exec(
            "DELETE FROM messages WHERE id <= (SELECT max(id) FROM messages) - ?", HISTORY
        )
        # As in the seed article: to every other session of the room.
        self.broadcast({"type": "message", "name": name, "text": text, "at": at}, exclude=ws)

    async def web_socket_close(self, ws: Any, code: int, reason: str, was_clean: bool) -> None:
        name = (ws.deserialize_attachment() or {}).get("name", "?")
        self.broadcast({"type": "leave", "name": name, "at": time.time()}, exclude=ws)

    async def recent(self) -> list[dict[str, Any]]:
        """The room's history (callable over RPC)."""
        return self.history()

    def history(self) -> list[dict[str, Any]]:
        rows = self.ctx.storage.sql.exec(
            "SELECT name, text, at FROM messages ORDER BY id DESC LIMIT ?", HISTORY
        ).fetchall()
        return rows[::-1]

    def broadcast(self, event: dict[str, Any], exclude: Any = None) -> None:
        text = json.dumps(event)
        for ws in self.ctx.get_websockets():
            if ws != exclude:
                ws.send(text)
