# The Worker: a Default(WorkerEntrypoint) with a fetch, as Cloudflare's Python docs write it
# (with type annotations, as this repository's tests are typed).
from urllib.parse import parse_qs, urlparse

from objects import Counter, Loader, Room  # the Durable Objects: classes of the main module

from workers import Request, Response, WorkerEntrypoint, fetch

__all__ = ["Counter", "Default", "Loader", "Room"]


class Default(WorkerEntrypoint):
    async def fetch(self, request: Request) -> Response:
        url = urlparse(request.url)
        parts = url.path.strip("/").split("/")
        if url.path == "/":
            return Response("Hello World!")
        if parts[0] == "json":
            return Response.json({"hello": "wörld", "method": request.method}, status=201)
        if parts[0] == "redirect":
            return Response.redirect("https://example.com/elsewhere", 301)
        if parts[0] == "echo":
            body = await request.text()
            return Response(
                body.upper(),
                headers={"x-echo": request.headers.get("x-test", ""), "content-type": "text/x"},
            )
        if parts[0] == "bytes":
            return Response(b"\x00\x01")
        if parts[0] == "counter":
            stub = self.env.COUNTER.get(self.env.COUNTER.idFromName(parts[1]))
            if len(parts) > 2 and parts[2] == "fetch":
                return await stub.fetch(request)  # type: ignore[no-any-return]
            return Response.json({"value": await stub.increment()})
        if parts[0] == "unique":
            made = self.env.COUNTER.newUniqueId()
            again = self.env.COUNTER.idFromString(made.toString())
            first = await self.env.COUNTER.get(made).increment()
            second = await self.env.COUNTER.get(again).increment()
            return Response.json(
                {"values": [first, second], "equal": made.equals(again), "name": again.name}
            )
        if parts[0] == "hello":
            stub = self.env.COUNTER.getByName("foo")
            return Response(await stub.say_hello(parts[1]))
        if parts[0] == "ws":
            if request.headers.get("Upgrade") != "websocket":
                return Response("Worker expected Upgrade: websocket", status=426)
            return await self.env.ROOM.getByName(parts[1]).fetch(request)  # type: ignore[no-any-return]
        if parts[0] == "proxy":
            target = parse_qs(url.query)["url"][0]
            reply = await fetch(target, method="POST", body="ping", headers={"x-from": "worker"})
            return Response(f"{reply.status} {await reply.text()}")
        if parts[0] == "later":
            self.ctx.waitUntil(self.env.COUNTER.getByName("later").increment())
            return Response("scheduled")
        return Response("not found", status=404)
