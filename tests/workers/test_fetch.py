"""A Python Worker written as Cloudflare's docs write it (``Default(WorkerEntrypoint)``, its
Durable Objects from ``workers``), served from ``raydo.toml`` and checked over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from raydo.gateway.testing import start_app

from ..polling import poll

APP = Path(__file__).parent / "apps" / "hello"


async def test_fetch_text_json_redirect_and_bytes_follow_the_fetch_standard() -> None:
    async with start_app(APP) as app:
        hello = await app.http.get("/")
        assert (hello.status_code, hello.text) == (200, "Hello World!")
        assert hello.headers["content-type"] == "text/plain;charset=UTF-8"

        data = await app.http.post("/json")
        assert data.status_code == 201
        assert data.headers["content-type"] == "application/json"
        assert data.content == '{"hello":"wörld","method":"POST"}'.encode()

        moved = await app.http.get("/redirect")
        assert moved.status_code == 301
        assert moved.headers["location"] == "https://example.com/elsewhere"

        raw = await app.http.get("/bytes")
        assert raw.content == b"\x00\x01" and "content-type" not in raw.headers

        echo = await app.http.post("/echo", content="shout", headers={"x-test": "t"})
        assert (echo.text, echo.headers["x-echo"]) == ("SHOUT", "t")
        assert echo.headers["content-type"] == "text/x"  # the Worker's own type wins

        missing = await app.http.get("/nope")
        assert (missing.status_code, missing.text) == (404, "not found")


async def test_a_durable_object_reached_by_id_from_name_over_rpc_and_fetch() -> None:
    async with start_app(APP) as app:
        assert (await app.http.get("/counter/a")).json() == {"value": 1}
        assert (await app.http.get("/counter/a")).json() == {"value": 2}
        assert (await app.http.get("/counter/b")).json() == {"value": 1}

        passed = await app.http.put("/counter/a/fetch?x=1")
        assert passed.json() == {
            "value": 3,
            "method": "PUT",
            "url": f"{app.url}/counter/a/fetch?x=1",
        }
        assert (await app.http.get("/hello/world")).text == "Hello, world!"


async def test_wait_until_runs_after_the_response() -> None:
    async with start_app(APP) as app:
        assert (await app.http.get("/later")).text == "scheduled"
        stub = app.env.COUNTER.get_by_name("later")
        assert await poll(lambda: stub.increment(0), lambda value: value == 1) == 1


@contextlib.asynccontextmanager
async def _origin() -> AsyncIterator[str]:
    """A plain uvicorn server on 127.0.0.1 for the Worker's outgoing fetch to reach."""

    async def answer(request: Request) -> PlainTextResponse:
        body = (await request.body()).decode()
        return PlainTextResponse(f"{request.method} {body} {request.headers['x-from']}")

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/", answer, methods=["POST"])]), log_level="warning"
        )
    )
    serving = asyncio.ensure_future(server.serve(sockets=[listener]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        server.should_exit = True
        await serving


async def test_outgoing_fetch_reaches_a_local_server() -> None:
    async with _origin() as origin, start_app(APP) as app:
        reply = await app.http.get("/proxy", params={"url": origin})
        assert reply.text == "200 POST ping worker"
