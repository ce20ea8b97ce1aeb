"""Key-value reads for bench/kv.py: over HTTP, and in a loop inside the gateway process."""

import asyncio
import random
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

KEYS = 1000


async def seed(request: Request) -> Response:
    value = "v" * int(request.query_params.get("bytes", "100"))
    for ns in ("CACHED", "DIRECT"):
        kv = getattr(request.state.env, ns)
        await asyncio.gather(*(kv.put(f"k{n}", value) for n in range(KEYS)))
    return JSONResponse({"keys": KEYS})


async def read(request: Request) -> Response:
    kv = getattr(request.state.env, request.path_params["ns"])
    value = await kv.get(request.path_params["key"])
    return PlainTextResponse(value if value is not None else "", 200 if value else 404)


async def loop(request: Request) -> Response:
    """``reads`` gets (or puts, with ``op=put``) of random keys, ``concurrency`` at a time,
    timed in this process."""
    kv = getattr(request.state.env, request.path_params["ns"])
    reads = int(request.query_params.get("reads", "10000"))
    concurrency = int(request.query_params.get("concurrency", "32"))
    write = request.query_params.get("op") == "put"
    missing = 0

    async def worker(count: int) -> None:
        nonlocal missing
        for _ in range(count):
            key = f"k{random.randrange(KEYS)}"
            if write:
                await kv.put(key, "w" * 100)
            elif await kv.get(key) is None:
                missing += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(reads // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    done = reads // concurrency * concurrency
    return JSONResponse({"reads": done, "seconds": elapsed, "missing": missing})


app = Starlette(
    routes=[
        Route("/seed", seed, methods=["POST"]),
        Route("/kv/{ns}/{key}", read),
        Route("/loop/{ns}", loop),
    ]
)
