"""A counter per name: the smallest useful Durable Object."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from raydo import DurableObject


class Counter(DurableObject):
    async def increment(self, by: int = 1) -> int:
        """Add ``by`` and return the new value (callable over RPC)."""
        n: int = self.ctx.storage.get("n", 0) + by
        self.ctx.storage.put("n", n)
        return n

    async def value(self) -> int:
        n: int = self.ctx.storage.get("n", 0)
        return n

    async def fetch(self, request: Request) -> Response:
        """``GET`` reads the counter, ``POST`` increments it (by ``?by=N``, default 1)."""
        if request.method == "POST":
            by = int(request.query_params.get("by", "1"))
            return JSONResponse({"name": self.ctx.id.name, "value": await self.increment(by)})
        return JSONResponse({"name": self.ctx.id.name, "value": await self.value()})
