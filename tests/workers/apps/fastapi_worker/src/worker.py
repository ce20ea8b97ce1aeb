# A FastAPI app behind a Python Worker, as Cloudflare's FastAPI page writes it (with type
# annotations, as this repository's tests are typed).
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel

from workers import DurableObject, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:
        import asgi

        return await asgi.fetch(app, request.js_object, self.env)


class Counter(DurableObject):
    async def increment(self) -> int:
        value = (await self.ctx.storage.get("value") or 0) + 1
        await self.ctx.storage.put("value", value)
        return value


app = FastAPI()


@app.get("/")
async def root() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/env")
async def env(req: Request) -> dict[str, str]:
    env = req.scope["env"]
    return {"message": "Here is an example of getting an environment variable: " + env.MESSAGE}


class Item(BaseModel):
    name: str
    description: str | None = None
    price: float
    tax: float | None = None


@app.post("/items/")
async def create_item(item: Item) -> Item:
    return item


@app.put("/items/{item_id}")
async def update_item(item_id: int, item: Item, q: str | None = None) -> dict[str, Any]:
    result = {"item_id": item_id, **item.model_dump()}
    if q:
        result.update({"q": q})
    return result


@app.post("/count/{name}")
async def count(name: str, req: Request) -> dict[str, int]:
    stub = req.scope["env"].COUNTER.getByName(name)
    return {"value": await stub.increment()}
