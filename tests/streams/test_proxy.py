"""A proxy route: an object relays a streamed answer from a real upstream server on
127.0.0.1, chunk by chunk, and a client that leaves stops the upstream too."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from raydo.gateway.testing import TestApp
from tests.polling import as_async, poll

CHUNKS = 20
INTERVAL = 0.05


class Upstream:
    """A server-sent-events upstream: ``/ticks`` sends ``CHUNKS`` events ``INTERVAL`` apart
    and counts the streams it finished and the ones its client left."""

    def __init__(self) -> None:
        self.finished = 0
        self.abandoned = 0
        self.app = Starlette(routes=[Route("/ticks", self.ticks)])

    async def ticks(self, request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            completed = False
            try:
                for i in range(CHUNKS):
                    yield f"data: {i} {time.time()}\n\n"
                    await asyncio.sleep(INTERVAL)
                completed = True
            finally:
                if completed:
                    self.finished += 1
                else:
                    self.abandoned += 1

        return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    served = Upstream()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(served.app, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve(sockets=[listener]))
    await poll(as_async(lambda: server.started), bool)
    try:
        yield served, f"http://127.0.0.1:{port}/ticks"
    finally:
        server.should_exit = True
        await task
        listener.close()


async def test_an_object_relays_a_streamed_upstream_answer_as_it_comes(
    app: TestApp, name: str, upstream: tuple[Upstream, str]
) -> None:
    served, url = upstream
    arrivals: list[tuple[float, float]] = []
    async with app.http.stream("GET", f"/o/{name}/proxy", params={"url": url}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        async for line in reply.aiter_lines():
            if line.startswith("data: "):
                _, made = line[len("data: ") :].split()
                arrivals.append((time.time(), float(made)))
    assert len(arrivals) == CHUNKS
    assert arrivals[0][0] < arrivals[-1][1]  # the first arrived before the last was made
    assert max(arrived - made for arrived, made in arrivals) < 2.0
    assert served.finished == 1


async def test_a_client_leaving_a_proxied_stream_stops_the_upstream_too(
    app: TestApp, name: str, upstream: tuple[Upstream, str]
) -> None:
    served, url = upstream
    async with app.http.stream("GET", f"/o/{name}/proxy", params={"url": url}) as reply:
        lines = reply.aiter_lines()
        assert (await anext(lines)).startswith("data: 0 ")
    await poll(as_async(lambda: served.abandoned), lambda n: n == 1, timeout=20)
    state = (await app.http.get(f"/o/{name}/state")).json()
    assert state["upstream_closed"] == 1 and served.finished == 0
