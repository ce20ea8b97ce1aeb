"""A room that exposes every WebSocket behaviour to tests."""

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from raydo import DurableObject


class Room(DurableObject):
    constructed = 0

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        Room.constructed += 1

    async def fetch(self, request: Request) -> Response:
        if request.query_params.get("refuse"):
            return PlainTextResponse("not welcome", status_code=403)
        tags = [t for t in request.query_params.get("tags", "").split(",") if t]
        return self.ctx.accept_websocket(request, tags=tags)

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        if isinstance(message, bytes):
            ws.send(message[::-1])
            return
        command, _, rest = message.partition(" ")
        if command == "echo":
            ws.send(rest)
        elif command == "broadcast":
            for other in self.ctx.get_websockets():
                other.send(rest)
        elif command == "tagged":
            tag, _, text = rest.partition(" ")
            for other in self.ctx.get_websockets(tag):
                other.send(text)
        elif command == "attach":
            ws.serialize_attachment({"who": rest})
            ws.send("attached")
        elif command == "whoami":
            ws.send(str(ws.deserialize_attachment()))
        elif command == "tags":
            ws.send(",".join(self.ctx.get_tags(ws)))
        elif command == "count":
            ws.send(str(len(self.ctx.get_websockets())))
        elif command == "write-then-fail":
            self.ctx.storage.put("n", 1)
            ws.send("should never arrive")
            raise RuntimeError("fail after send")
        elif command == "write-then-send":
            self.ctx.storage.put("written", rest)
            ws.send(f"written {rest}")
        elif command == "close":
            code, _, reason = rest.partition(" ")
            ws.close(int(code), reason)
        elif command == "auto":
            request, _, response = rest.partition(" ")
            self.ctx.set_websocket_auto_response(request, response)
            ws.send("auto set")
        elif command == "constructed":
            ws.send(str(Room.constructed))
        elif command == "abort":
            self.ctx.abort("aborted on request")

    async def web_socket_close(self, ws: Any, code: int, reason: str, was_clean: bool) -> None:
        closes = self.ctx.storage.get("closes", [])
        closes.append([ws.sid, code, reason, was_clean])
        self.ctx.storage.put("closes", closes)

    async def closes(self) -> list[Any]:
        closes: list[Any] = self.ctx.storage.get("closes", [])
        return closes

    async def sockets(self) -> int:
        return len(self.ctx.get_websockets())

    async def send_all(self, text: str) -> int:
        sockets = self.ctx.get_websockets()
        for ws in sockets:
            ws.send(text)
        return len(sockets)
