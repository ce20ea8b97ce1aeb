"""Gates mode with every kind of event, in process and on Ray: alarms and fetches run while an
RPC of the object waits, and an object keeps answering WebSocket messages while one of its
events streams from a slow upstream."""

from __future__ import annotations

import asyncio

from raydo.gateway.testing import TestApp
from tests.polling import poll
from tests.websockets.clients import ask, recv


async def test_an_alarm_and_a_fetch_run_while_an_rpc_waits(app: TestApp, name: str) -> None:
    room = app.env.GATED.get_by_name(name)
    polled = asyncio.ensure_future(room.poll())
    await poll(room.waiting, lambda waiting: waiting == 1)
    await room.arm()
    assert await app.run_alarm("GATED", name)  # the alarm answers the waiting poll
    assert await polled == "alarm"
    polled = asyncio.ensure_future(room.poll())
    await poll(room.waiting, lambda waiting: waiting == 1)
    response = await room.fetch("http://room/post", method="POST", body="fetched")
    assert response.body == b"1"
    assert await polled == "fetched"


async def test_a_room_answers_its_sockets_while_an_event_streams_from_a_slow_upstream(
    app: TestApp, name: str
) -> None:
    token = f"{name}-stream"
    upstream = app.env.UPSTREAM.get_by_name("slow")
    async with app.websocket(f"/ws/GATED/{name}", open_timeout=30) as ws:
        await ws.send(f"stream:{token}:3")  # waits on its upstream until released
        try:
            assert await ask(ws, "ping") == "pong"
            assert await ask(ws, "ping") == "pong"
        finally:
            await upstream.release(token)
        assert await recv(ws) == "chunk 0"
        await ws.send("ping")  # while the stream awaits its next chunk
        rest = [await recv(ws) for _ in range(4)]
    assert "pong" in rest
    assert [message for message in rest if message != "pong"] == ["chunk 1", "chunk 2", "done"]
