"""Streamed replies through an object over real HTTP, in process and on Ray: server-sent
events as they are produced, a client that leaves mid-stream, the output gate per chunk."""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import time

import httpx
import pytest

from raydo.actors._streams import Pipe
from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from raydo.storage import layout
from tests.placements import Placement
from tests.polling import as_async, poll
from tests.streams.conftest import MakeApp


async def state(app: TestApp, name: str) -> dict[str, int]:
    reply = await app.http.get(f"/o/{name}/state")
    assert reply.status_code == 200, reply.text
    found: dict[str, int] = reply.json()
    return found


async def test_server_sent_events_arrive_one_by_one_as_they_are_produced(
    app: TestApp, name: str
) -> None:
    interval = 0.03
    seen: list[tuple[float, dict[str, float]]] = []
    async with app.http.stream(
        "GET", f"/o/{name}/events", params={"n": 100, "interval": interval}
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in reply.headers
        buffer = ""
        async for text in reply.aiter_text():
            buffer += text
            while "\n\n" in buffer:
                event, buffer = buffer.split("\n\n", 1)
                data = next(line for line in event.splitlines() if line.startswith("data: "))
                seen.append((time.time(), json.loads(data[len("data: ") :])))
    assert [event["i"] for _, event in seen] == list(range(100))
    # Each event reached the client soon after the object made it, not at the end.
    lags = [arrived - event["t"] for arrived, event in seen]
    assert max(lags) < 2.0, f"an event waited {max(lags):.2f} s between object and client"
    first_arrival, last_made = seen[0][0], seen[-1][1]["t"]
    assert first_arrival < last_made - 50 * interval  # the first came long before the last


def live_pipes() -> int:
    """Stream buffers alive in this process (the gateway's, and in process the host's)."""
    gc.collect()
    return sum(isinstance(o, Pipe) for o in gc.get_objects())


def streams_on_links(app: TestApp) -> int:
    """Streams under way on this gateway's connections to Ray hosts (none in process)."""
    links = getattr(app.gateway.placement, "_links", {})
    return sum(link.streams.open_streams + link.held_bytes for link in links.values())


async def test_a_client_that_leaves_closes_the_generator_and_ends_the_event(
    app: TestApp, name: str
) -> None:
    await state(app, name)  # the object and the connections exist before the baseline
    tasks, pipes = len(asyncio.all_tasks()), live_pipes()
    async with (
        httpx.AsyncClient(base_url=app.url, timeout=30) as client,
        client.stream(
            "GET", f"/o/{name}/endless", params={"interval": 0.02, "size": 10_000}
        ) as reply,
    ):
        chunks = reply.aiter_bytes()
        got = 0
        while got < 100_000:
            got += len(await anext(chunks))
    # The generator's finally ran, the event ended (the object answers the next event), and
    # what it committed is kept.
    after = await poll(lambda: state(app, name), lambda s: s["closed"] == 1, timeout=20)
    assert after["produced"] >= 10
    later = await state(app, name)
    assert later["produced"] == after["produced"]  # it stopped producing
    # Nothing of the stream is left: no task, no buffer, no frame or stream on a link.
    await poll(as_async(lambda: len(asyncio.all_tasks())), lambda n: n <= tasks)
    await poll(as_async(live_pipes), lambda n: n <= pipes)
    assert streams_on_links(app) == 0


async def test_each_chunk_leaves_only_after_the_writes_made_before_it_commit(
    app: TestApp, name: str
) -> None:
    object_hex = str(app.env.STREAMER.id_from_name(name))
    path = layout.object_file(app.config.storage, "STREAMER", object_hex)
    async with app.http.stream("GET", f"/o/{name}/marks", params={"n": 20}) as reply:
        async for line in reply.aiter_lines():
            if not line:
                continue
            # The mark written before this chunk is on disk, seen by another connection.
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                (highest,) = db.execute("SELECT max(i) FROM marks").fetchone()
            assert highest is not None and highest >= int(line)


async def test_an_object_echoes_a_body_while_it_still_arrives(app: TestApp, name: str) -> None:
    sent: list[bytes] = []

    async def body() -> object:
        for i in range(50):
            chunk = f"{i:04d}".encode() * 25_000  # 100 kB each, 5 MB in all
            sent.append(chunk)
            yield chunk

    got = b""
    async with app.http.stream("POST", f"/o/{name}/echo", content=body()) as reply:  # type: ignore[arg-type]
        assert reply.status_code == 200
        async for chunk in reply.aiter_bytes():
            got += chunk
    assert got == b"".join(sent)


async def test_a_short_request_and_a_plain_reply_still_travel_whole(
    app: TestApp, name: str
) -> None:
    reply = await app.http.post(f"/o/{name}/whole", content=b"x" * 1000)
    assert reply.json() == {"size": 1000}
    reply = await app.http.post(f"/o/{name}/count", content=b"y" * 3_000_000)
    assert reply.json() == {"size": 3_000_000}
    assert reply.headers["content-length"] == str(len(reply.content))


async def test_a_streamed_body_the_object_ignores_costs_only_its_window(
    app: TestApp, name: str
) -> None:
    async def body() -> object:
        for _ in range(200):
            yield b"z" * 100_000

    async with httpx.AsyncClient(base_url=app.url, timeout=60) as client:
        reply = await client.post(f"/o/{name}/ignore", content=body())  # type: ignore[arg-type]
    assert reply.json() == {"ignored": True}
    assert (await state(app, name))["closed"] == 0  # the object still answers


async def test_a_reply_past_stream_bytes_is_cut_off_and_its_event_fails(
    streams_dir: MakeApp, placement: Placement, name: str
) -> None:
    app_dir = streams_dir("[limits]\nstream_bytes = 200000")
    async with start_app(app_dir, **placement, storage=CONFIGURED_STORAGE) as app:
        got = 0
        with pytest.raises(httpx.RemoteProtocolError):  # the client sees the body cut off
            async with app.http.stream(
                "GET", f"/o/{name}/endless", params={"interval": 0, "size": 10_000}
            ) as reply:
                async for chunk in reply.aiter_bytes():
                    got += len(chunk)
        assert got <= 200_000
        # The object's event failed on the limit (what it had sent stays committed) and the
        # object answers the next event.
        after = await state(app, name)
        assert after["produced"] in (20, 21) and after["closed"] == 0


async def test_a_client_that_stops_reading_is_an_idle_breach_for_the_generator(
    streams_dir: MakeApp, placement: Placement, name: str
) -> None:
    app_dir = streams_dir("[limits]\nstream_idle_seconds = 1\nstream_window_bytes = 65536")
    async with (
        start_app(app_dir, **placement, storage=CONFIGURED_STORAGE) as app,
        httpx.AsyncClient(base_url=app.url, timeout=60) as reader,
        reader.stream("GET", f"/o/{name}/endless", params={"interval": 0, "size": 65536}) as reply,
    ):
        chunks = reply.aiter_bytes()
        await anext(chunks)
        # It reads no more. The object's next event runs once the streaming one has
        # ended, which it does when the generator has waited a second for room.
        after = await state(app, name)
        assert after["produced"] >= 1
        assert (await state(app, name))["produced"] == after["produced"]
        with pytest.raises(httpx.RemoteProtocolError):  # the rest of it is cut off
            async for _ in chunks:
                pass
