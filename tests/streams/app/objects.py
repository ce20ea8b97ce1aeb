"""An object whose fetch streams: server-sent events, uploads, echoes, a proxy."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from raydo import DurableObject


class Streamer(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS marks (i INTEGER)")

    async def fetch(self, request: Request) -> Response:
        route = request.url.path.split("/", 3)[3]
        q = request.query_params
        if route == "events":
            return StreamingResponse(
                self.events(int(q["n"]), float(q["interval"])), media_type="text/event-stream"
            )
        if route == "endless":
            size = int(q.get("size", "0"))
            return StreamingResponse(self.endless(float(q["interval"]), size))
        if route == "marks":
            return StreamingResponse(self.marks(int(q["n"])))
        if route == "upload":
            stored = await self.env.BUCKET.put(q["key"], request.stream())
            return JSONResponse({"size": stored.size, "etag": stored.etag})
        if route == "echo":
            return StreamingResponse(request.stream())
        if route == "count":
            size = 0
            try:
                async for chunk in request.stream():
                    size += len(chunk)
            except Exception as exc:
                if "catch" not in q:
                    raise
                return JSONResponse({"read_error": f"{type(exc).__name__}: {exc}"}, 400)
            return JSONResponse({"size": size})
        if route == "whole":
            return JSONResponse({"size": len(await request.body())})
        if route == "ignore":
            return JSONResponse({"ignored": True})
        if route == "proxy":
            return StreamingResponse(self.proxy(q["url"]), media_type="text/event-stream")
        if route == "state":
            return JSONResponse(
                {
                    "closed": self.ctx.storage.get("closed", 0),
                    "produced": self.ctx.storage.get("produced", 0),
                    "upstream_closed": self.ctx.storage.get("upstream_closed", 0),
                }
            )
        return JSONResponse({"error": "no such route"}, status_code=404)

    async def events(self, n: int, interval: float) -> AsyncIterator[str]:
        for i in range(n):
            yield f"id: {i}\ndata: {json.dumps({'i': i, 't': time.time()})}\n\n"
            await asyncio.sleep(interval)

    async def endless(self, interval: float, size: int) -> AsyncIterator[bytes]:
        i = 0
        try:
            while True:
                i += 1
                self.ctx.storage.put("produced", i)
                yield f"{i}\n".encode() if not size else b"e" * size
                await asyncio.sleep(interval)
        finally:
            self.ctx.storage.put("closed", self.ctx.storage.get("closed", 0) + 1)

    async def marks(self, n: int) -> AsyncIterator[bytes]:
        for i in range(n):
            self.ctx.storage.sql.exec("INSERT INTO marks VALUES (?)", i)
            yield f"{i}\n".encode()

    async def proxy(self, url: str) -> AsyncIterator[bytes]:
        try:
            async with (
                httpx.AsyncClient(timeout=30) as client,
                client.stream("GET", url) as upstream,
            ):
                async for chunk in upstream.aiter_raw():
                    yield chunk
        finally:
            self.ctx.storage.put("upstream_closed", self.ctx.storage.get("upstream_closed", 0) + 1)
