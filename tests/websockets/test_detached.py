"""Accepted sockets leave ASGI: an idle socket holds no task and no call stack, and the
behaviour is the same as under a server that cannot detach them."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import uvicorn
import websockets
from websockets.exceptions import ConnectionClosed

from raydo.actors.placement import LocalPlacement
from raydo.actors.websockets import DetachedSocket
from raydo.gateway._ws_protocol import LeanWebSocketProtocol
from raydo.gateway.app import Gateway
from raydo.gateway.config import load_config
from raydo.gateway.testing import CONFIGURED_STORAGE, start_app
from tests.naming import fresh_name
from tests.polling import poll
from tests.websockets.clients import ask


async def test_idle_sockets_hold_no_task_and_no_asgi_call(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("rooms"), storage=CONFIGURED_STORAGE) as app:
        name = fresh_name()
        url = app.websocket_url(f"/room/{name}")
        async with websockets.connect(url) as first:
            assert await ask(first, "echo warm") == "warm"
            await asyncio.sleep(0.2)
            tasks_before = len(asyncio.all_tasks())
            clients = [await websockets.connect(url, ping_interval=None) for _ in range(40)]
            for ws in clients:
                assert await ask(ws, "echo hi") == "hi"
            await asyncio.sleep(0.2)
            # The clients' own connections have a task or two each; the server side of an
            # idle socket has none, so the total grows by the clients' share only.
            client_tasks = sum(1 for t in asyncio.all_tasks() if "websockets" in repr(t.get_coro()))
            server_tasks = len(asyncio.all_tasks()) - tasks_before - client_tasks
            assert server_tasks <= 0, [t.get_coro() for t in asyncio.all_tasks()]
            gc.collect()
            detached = [o for o in gc.get_objects() if isinstance(o, LeanWebSocketProtocol)]
            held = [p for p in detached if p.sink is not None and not p.disconnected]
            assert len(held) == 41
            # Nothing of the upgrade is kept: no scope, request or response.
            assert all(not hasattr(p, "scope") for p in held)
            assert all(isinstance(p.sink, DetachedSocket) for p in held)
            stub = app.env.ROOM.get_by_name(name)
            assert await stub.sockets() == 41
            for ws in clients:
                await ws.close()
            await poll(stub.sockets, lambda n: n == 1)
        closes = await poll(stub.closes, lambda c: len(c) == 41)
        assert {(c[1], c[3]) for c in closes} == {(1000, True)}


async def test_messages_keep_their_order_under_a_burst(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("rooms"), storage=CONFIGURED_STORAGE) as app:
        ws = await websockets.connect(app.websocket_url(f"/room/{fresh_name()}"))
        for i in range(300):  # far past the inbox's pause mark: reading pauses, resumes
            await ws.send(f"echo {i}")
        got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(300)]
        assert got == [str(i) for i in range(300)]
        await ws.close()


async def test_invalid_utf8_in_a_text_frame_closes_with_1007(
    app_copy: Callable[[str], Path],
) -> None:
    async with start_app(app_copy("rooms"), storage=CONFIGURED_STORAGE) as app:
        name = fresh_name()
        stub = app.env.ROOM.get_by_name(name)
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(app.url))
        writer.write(
            f"GET /room/{name} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        await poll(stub.sockets, lambda n: n == 1)
        payload = b"\xff\xfe\xfd"
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        frame = await asyncio.wait_for(reader.read(64), 10)
        assert frame[0] == 0x88  # a Close frame...
        assert int.from_bytes(frame[2:4], "big") == 1007  # ...for invalid data
        writer.close()
        closes = await poll(stub.closes, lambda c: len(c) == 1)
        assert closes[0][1] == 1007 and closes[0][3] is False


async def test_a_stopping_server_closes_detached_sockets_with_1012(
    app_copy: Callable[[str], Path],
) -> None:
    folder = app_copy("rooms")
    async with start_app(folder, storage=CONFIGURED_STORAGE) as app:
        ws = await websockets.connect(app.websocket_url(f"/room/{fresh_name()}"))
        assert await ask(ws, "echo hi") == "hi"
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012


async def test_servers_that_cannot_detach_get_the_same_behaviour(
    app_copy: Callable[[str], Path],
) -> None:
    """Under uvicorn's own protocol the socket is read through ASGI until it closes."""

    config = load_config(app_copy("rooms"))
    gateway = Gateway(config, LocalPlacement)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            gateway, log_level="warning", lifespan="on", ws="websockets-sansio", port=port
        )
    )
    serving = asyncio.ensure_future(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        name = fresh_name()
        stub = gateway.env.ROOM.get_by_name(name)
        async with websockets.connect(f"ws://127.0.0.1:{port}/room/{name}") as ws:
            assert await ask(ws, "echo plain") == "plain"
            assert await ask(ws, b"abc") == b"cba"
            gc.collect()
            assert not any(isinstance(o, LeanWebSocketProtocol) for o in gc.get_objects())
        closes = await poll(stub.closes, lambda c: len(c) == 1)
        assert (closes[0][1], closes[0][3]) == (1000, True)
    finally:
        server.should_exit = True
        await serving


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


_SLOW_ACCEPT_APP = '''
import asyncio

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute


async def room(websocket):
    stub = websocket.state.env.ROOM.get_by_name(websocket.path_params["name"])
    await stub.fetch(websocket)


class SlowAfterAccept:
    """Middleware that dawdles after the accept: messages arrive before the detach."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def send_(message):
            await send(message)
            if message["type"] == "websocket.accept":
                await asyncio.sleep(0.5)

        await self.app(scope, receive, send_)


app = SlowAfterAccept(Starlette(routes=[WebSocketRoute("/room/{name}", room)]))
'''


async def test_messages_sent_before_the_detach_arrive_in_order(
    app_copy: Callable[[str], Path],
) -> None:
    folder = app_copy("rooms")
    (folder / "app.py").write_text(_SLOW_ACCEPT_APP)
    async with start_app(folder, storage=CONFIGURED_STORAGE) as app:
        ws = await websockets.connect(app.websocket_url(f"/room/{fresh_name()}"))
        for i in range(5):  # sent while the middleware still holds the ASGI call
            await ws.send(f"echo early {i}")
        got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(5)]
        assert got == [f"early {i}" for i in range(5)]
        assert await ask(ws, "echo later") == "later"
        await ws.close()
