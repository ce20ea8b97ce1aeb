"""WebSockets end to end: reference §1.12, §2.9 and scenarios 51-60; README "### WebSockets".

Real clients (the ``websockets`` library, and raw TCP for malformed input) talk to the
``tests/apps/rooms`` app served by ``gateway.testing.start_app``, with hosts in this process or
in the session's Ray cluster (the app and its routes: ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from raydo.actors.websockets import _asgi as websocket_asgi
from raydo.actors.websockets import _detached as websocket_detached
from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from raydo.gateway.testing import TestApp
from tests.cluster import RAYDO, Server, free_port
from tests.placements import Placement, local_only
from tests.polling import poll
from tests.websockets.clients import (
    ask,
    closed_by_server,
    connect,
    evicted,
    is_live,
    port_of,
    recv,
)
from tests.websockets.rooms import SLOW_QUEUE, Room, make_app, shared_app, started

T = TypeVar("T")
MiB = 1024 * 1024

# ---- upgrade ----------------------------------------------------------------------------------


async def test_upgrade_fetch_sees_path_query_and_headers(app: TestApp, name: str) -> None:
    url = app.websocket_url(f"/lab/{name}/deep/path?x=1&y=two%20words")
    async with connect(url, additional_headers={"X-Probe": "hello"}) as ws:
        seen = json.loads(await ask(ws, "seen"))
        assert await ask(ws, "echo accepted") == "accepted"
    assert seen["method"] == "GET"
    assert seen["path"] == f"/lab/{name}/deep/path"
    assert seen["query"] == "x=1&y=two%20words"
    assert seen["params"] == {"x": "1", "y": "two words"}
    headers = seen["headers"]
    assert headers["x-probe"] == "hello"
    assert headers["upgrade"].lower() == "websocket"
    assert headers["host"] == app.url.removeprefix("http://")
    assert headers["sec-websocket-key"]


async def test_refused_upgrade_gets_the_objects_status_before_any_upgrade(room: Room) -> None:
    async with connect(room.url) as ws:
        assert await ask(ws, "count") == "1"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(room.url + "?refuse=1"):
                pass
        assert refused.value.response.status_code == 403
        assert bytes(refused.value.response.body) == b"not welcome"
        # The refused socket was never recorded; the accepted one is unaffected.
        assert await ask(ws, "count") == "1"
        assert await room.stub.sockets() == 1
    closes = await poll(room.stub.closes, lambda c: len(c) == 1)
    assert [c[1:] for c in closes] == [[1000, "", True]]
    assert await room.stub.sockets() == 0


# ---- messages ---------------------------------------------------------------------------------


async def test_messages_are_handled_in_order_text_and_binary(room: Room) -> None:
    async with connect(room.url) as ws:
        for i in range(100):
            await ws.send(f"echo {i}")
        assert [await recv(ws) for _ in range(100)] == [str(i) for i in range(100)]
        blob = os.urandom(5000)
        assert await ask(ws, blob) == blob[::-1]
        for message in ("echo a", b"\x01\x02\x03", "echo héllo ✓", b"z", "echo b"):
            await ws.send(message)
        received = [await recv(ws) for _ in range(5)]
        assert received == ["a", b"\x03\x02\x01", "héllo ✓", b"z", "b"]


async def test_a_flood_of_2000_messages_is_processed_in_order(app: TestApp, name: str) -> None:
    count = 2000

    async with connect(app.websocket_url(f"/room/{name}")) as ws:
        got: list[str | bytes] = []

        async def reader() -> None:
            while len(got) < count:
                got.append(await ws.recv())

        reading = asyncio.ensure_future(reader())
        for i in range(count):
            await ws.send(f"echo {i}")
        await asyncio.wait_for(reading, 40)
        assert got == [str(i) for i in range(count)]
        assert await ask(ws, "count") == "1"


async def test_sends_of_one_event_arrive_in_the_order_they_were_made(
    app: TestApp, name: str
) -> None:
    async with connect(app.websocket_url(f"/lab/{name}")) as ws:
        await ws.send("interleave 3")
        received = [await recv(ws) for _ in range(6)]
        assert received == ["tick", "n0", "tick", "n1", "tick", "n2"]


# ---- closes -----------------------------------------------------------------------------------


async def test_client_close_reaches_the_object_once_with_code_and_reason(room: Room) -> None:
    async with connect(room.url) as other:
        ws = await connect(room.url)
        assert await ask(ws, "echo before") == "before"  # scenario 51: message, close
        assert await ask(other, "count") == "2"
        await ws.close(4000, "bye")
        closes = await poll(room.stub.closes, lambda c: len(c) >= 1)
        await asyncio.sleep(0.3)  # a duplicate would have arrived by now
        closes = await room.stub.closes()
        assert [c[1:] for c in closes] == [[4000, "bye", True]]
        assert await room.stub.sockets() == 1
        assert await ask(other, "count") == "1"


async def test_a_dropped_connection_is_reported_once_and_leaves_the_sockets(room: Room) -> None:
    async with connect(room.url) as other:
        ws = await connect(room.url)
        assert await ask(ws, "count") == "2"
        ws.transport.abort()  # no Close frame: the TCP connection just ends
        await ws.wait_closed()
        closes = await poll(room.stub.closes, lambda c: len(c) >= 1)
        await asyncio.sleep(0.3)
        assert len(await room.stub.closes()) == 1 == len(closes)
        assert await room.stub.sockets() == 1
        assert await ask(other, "count") == "1"


async def test_a_dropped_connection_closes_with_1006_not_clean(room: Room) -> None:
    ws = await connect(room.url)
    assert await ask(ws, "count") == "1"
    ws.transport.abort()
    await ws.wait_closed()
    closes = await poll(room.stub.closes, lambda c: len(c) >= 1)
    assert [[c[1], c[3]] for c in closes] == [[1006, False]]


async def test_close_from_the_object_reaches_the_client_and_is_not_reported_back(
    room: Room,
) -> None:
    async with connect(room.url) as ws:
        # 62 two-byte characters: 124 bytes of UTF-8, over the 123-byte limit.
        await ws.send("close 3000 " + "é" * 62)
        # The handler raised ValueError: nothing was sent and the socket stays open.
        assert await ask(ws, "echo still open") == "still open"
        await ws.send("close 1001 not-an-application-code")
        assert await ask(ws, "echo still open 2") == "still open 2"
        reason = "r" * 123
        await ws.send(f"close 4001 {reason}")
        closed = await closed_by_server(ws)
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (4001, reason)
    await poll(room.stub.sockets, lambda n: n == 0)
    await asyncio.sleep(0.3)
    assert await room.stub.closes() == []


async def test_abort_closes_every_socket_of_the_object_even_hibernated_ones(
    app: TestApp, room: Room, name: str
) -> None:
    async with connect(room.url) as a, connect(room.url) as b:
        assert await ask(b, "count") == "2"
        await evicted(app, "ROOM", name)
        await a.send("abort")
        for ws in (a, b):
            closed = await closed_by_server(ws)
            assert closed.rcvd is not None and closed.rcvd.code == 1011
    assert await room.stub.sockets() == 0
    await asyncio.sleep(0.3)
    assert await room.stub.closes() == []


# ---- hibernation ------------------------------------------------------------------------------


async def test_eviction_keeps_clients_tags_and_attachments(
    app: TestApp, room: Room, name: str
) -> None:
    async with (
        connect(room.url + "?tags=red,blue") as a,
        connect(room.url + "?tags=red") as b,
        connect(room.url) as c,
    ):
        assert await ask(a, "attach alice") == "attached"
        before = int(await ask(c, "constructed"))
        await evicted(app, "ROOM", name)
        assert await ask(b, "count") == "3"  # the message constructs it again
        assert int(await ask(c, "constructed")) > before
        assert await ask(a, "tags") == "red,blue"
        assert await ask(b, "tags") == "red"
        assert await ask(c, "tags") == ""
        assert await ask(a, "whoami") == "{'who': 'alice'}"
        assert await ask(b, "whoami") == "None"
        await a.send("tagged red hi")
        assert await recv(a) == "hi"
        assert await recv(b) == "hi"
        assert await ask(c, "echo marker") == "marker"  # c has no "red" tag
        # Scenario 52: a sleeping object's RPC can send to its sockets.
        await evicted(app, "ROOM", name)
        assert await room.stub.send_all("to all") == 3
        for ws in (a, b, c):
            assert await recv(ws) == "to all"


@pytest.mark.ray
async def test_host_restart_keeps_clients_tags_and_attachments(
    shared_apps: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    ray_cluster: Any,
    name: str,
) -> None:
    import ray

    from raydo.actors._ray import RAY_NAMESPACE, actor_name

    app_dir = shared_app(shared_apps, tmp_path_factory, {"ray": True})

    async with started(app_dir, {"ray": True}) as app:
        url = app.websocket_url(f"/room/{name}")
        stub = app.env.ROOM.get_by_name(name)
        spec = runtime_spec(load_config(app_dir))
        key = spec.host_for(spec.binding("ROOM"), stub.id.hex)
        async with (
            connect(url + "?tags=red,blue") as a,
            connect(url + "?tags=red") as b,
            connect(url) as c,
        ):
            assert await ask(a, "attach alice") == "attached"
            assert await ask(c, "count") == "3"
            host = ray.get_actor(actor_name(spec, key), RAY_NAMESPACE)
            pid = await host.pid.remote()
            os.kill(pid, signal.SIGKILL)

            async def sockets() -> int | None:
                try:
                    return int(await stub.sockets())
                except Exception:  # noqa: BLE001 - the host is restarting
                    return None

            assert await poll(sockets, lambda n: n is not None, timeout=45) == 3
            host = ray.get_actor(actor_name(spec, key), RAY_NAMESPACE)
            assert await host.pid.remote() != pid
            assert await ask(b, "count") == "3"
            assert await ask(a, "tags") == "red,blue"
            assert await ask(b, "tags") == "red"
            assert await ask(a, "whoami") == "{'who': 'alice'}"
            await c.send("broadcast after restart")
            for ws in (a, b, c):
                assert await recv(ws) == "after restart"


async def test_auto_response_is_answered_without_waking_the_object(
    app: TestApp, room: Room, name: str
) -> None:
    async with connect(room.url) as a:
        assert await ask(a, "auto ping pong") == "auto set"
        assert await ask(a, "ping") == "pong"
        async with connect(room.url) as b:  # accepted after the pair was set
            assert await ask(b, "ping") == "pong"
            before = int(await ask(a, "constructed"))
            await evicted(app, "ROOM", name)
            for _ in range(3):
                assert await ask(a, "ping") == "pong"
                assert await ask(b, "ping") == "pong"
            assert not await is_live(app, "ROOM", name)
            # Anything else still reaches the object, which wakes once for it.
            assert int(await ask(a, "constructed")) == before + 1
            assert await is_live(app, "ROOM", name)
            await b.send("PING")  # not the pair: the object gets it and says nothing
            assert await ask(b, "echo marker") == "marker"


# ---- the output gate --------------------------------------------------------------------------


async def test_sends_leave_only_with_a_committed_event(app: TestApp, name: str) -> None:
    lab = app.env.LAB.get_by_name(name)
    async with connect(app.websocket_url(f"/lab/{name}")) as ws:
        await ws.send("write-then-fail")
        assert await ask(ws, "echo marker") == "marker"  # never "should never arrive"
        assert await lab.value("n") is None  # its write rolled back too
        assert await ask(ws, "write-then-send abc") == "written abc"
        assert await lab.value("written") == "abc"


# ---- limits -----------------------------------------------------------------------------------


async def test_a_message_over_1_mib_closes_the_client_with_1009(room: Room) -> None:
    async with connect(room.url, compression=None) as ws:
        blob = os.urandom(MiB)  # exactly at the limit: fine
        assert await ask(ws, blob, timeout=30) == blob[::-1]
        await ws.send(os.urandom(MiB + 1))
        closed = await closed_by_server(ws)
        assert closed.rcvd is not None and closed.rcvd.code == 1009
    closes = await poll(room.stub.closes, lambda c: len(c) >= 1)
    assert [c[1] for c in closes] == [1009]
    assert await room.stub.sockets() == 0


@local_only
async def test_a_1_mib_message_from_a_client_offering_deflate_is_accepted(room: Room) -> None:
    """The gateway declines permessage-deflate by default, so the limit is the message's."""

    async with connect(room.url) as ws:
        assert ws.protocol.extensions == []
        blob = os.urandom(MiB)
        assert await ask(ws, blob, timeout=30) == blob[::-1]


@pytest.mark.ray
async def test_a_1_mib_message_is_accepted_with_ws_compression(
    app_copy: Callable[[str], Path],
    ray_cluster: Any,
    tmp_path: Path,
    name: str,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app_dir = kill_hosts_after(make_app(app_copy("rooms")))
    port = free_port()
    args = [RAYDO, "serve", str(app_dir), "--address", ray_cluster.address, "--port", str(port)]
    server = Server([*args, "--ws-compression"], port, tmp_path / "serve.log").start()

    try:
        # The client's own limit applies to the compressed echo (slightly over 1 MiB).
        async with connect(f"ws://127.0.0.1:{port}/room/{name}", max_size=2 * MiB) as ws:
            assert ws.protocol.extensions  # permessage-deflate was negotiated
            blob = os.urandom(MiB)
            assert await ask(ws, blob, timeout=30) == blob[::-1]
    finally:
        server.stop()


async def test_a_closed_sockets_handler_returns_promptly(local_rooms: Path, name: str) -> None:
    """Nothing of a closed socket lingers: the server's shutdown right after waits for nothing."""

    async with started(local_rooms, {}) as app:
        async with connect(app.websocket_url(f"/room/{name}")) as ws:
            assert await ask(ws, "count") == "1"
        stub = app.env.ROOM.get_by_name(name)
        await poll(stub.closes, lambda c: len(c) == 1)  # the close was handled
        leaving = time.monotonic()
    assert time.monotonic() - leaving < 2.0


async def test_tag_limits_refuse_the_upgrade(room: Room) -> None:
    ten = ",".join(f"t{i}" for i in range(10))
    long = "x" * 256
    async with connect(f"{room.url}?tags={ten}") as a, connect(f"{room.url}?tags={long}") as b:
        assert await ask(a, "tags") == ten
        assert await ask(b, "tags") == long
        for tags, limit in ((ten + ",t10", b"socket_tags"), ("y" * 257, b"tag_chars")):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{room.url}?tags={tags}"):
                    pass
            assert refused.value.response.status_code == 413  # a limit, named
            assert limit in bytes(refused.value.response.body)
        assert await room.stub.sockets() == 2
        assert await ask(a, "count") == "2"


async def test_an_attachment_over_16_kib_is_refused(room: Room) -> None:
    async with connect(room.url) as ws:
        fits = "x" * 16_000
        assert await ask(ws, f"attach {fits}") == "attached"
        await ws.send("attach " + "y" * 17_000)  # LimitExceeded: the event fails
        assert await ask(ws, "echo marker") == "marker"
        assert await ask(ws, "whoami") == str({"who": fits})


async def raw_request(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


def upgrade_request(port: int, path: str, *, key: bool = True) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
    ]
    if key:
        lines.append("Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode())
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_to_end(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def test_malformed_input_is_closed_and_the_room_keeps_serving(
    app: TestApp, room: Room, name: str
) -> None:
    port = port_of(app.url)
    path = f"/room/{name}"
    async with connect(app.websocket_url(path)) as keeper:
        assert await ask(keeper, "count") == "1"
        # An upgrade request without Sec-WebSocket-Key, then plain garbage.
        for data in (
            upgrade_request(port, path, key=False),
            b"\x16\x03\x01\xff\x00junk\r\n\r\n",
        ):
            reader, writer = await raw_request(port, data)
            answer = await read_to_end(reader)
            await close_writer(writer)
            assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
        # A real upgrade, then frames no client may send: a reserved opcode, an
        # unmasked frame.
        for frame in (b"\x8f\x80\x00\x00\x00\x00", b"\x81\x05hello"):
            reader, writer = await raw_request(port, upgrade_request(port, path))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 101"), head
            writer.write(frame)
            rest = await read_to_end(reader)
            await close_writer(writer)
            assert rest[:1] == b"\x88"  # a Close frame ...
            assert int.from_bytes(rest[2:4], "big") == 1002  # ... protocol error
        closes = await poll(room.stub.closes, lambda c: len(c) >= 2)
        assert [c[1] for c in closes] == [1002, 1002]
        assert await room.stub.sockets() == 1
        assert await ask(keeper, "count") == "1"
        assert await ask(keeper, "echo still serving") == "still serving"


# ---- slow clients -----------------------------------------------------------------------------


def flood_size(message_bytes: int) -> int:
    """Messages enough to overflow what the kernel and the transports buffer, twice over."""
    try:
        wmem = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        wmem = 4 * MiB
    return max(1000, 2 * (wmem + MiB) // message_bytes + 2 * SLOW_QUEUE)


async def non_reading_client(app: TestApp, path: str) -> ClientConnection:
    """A client with a small receive buffer that reads nothing until told to."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port_of(app.url)))
    return await connect(app.websocket_url(path), sock=raw, max_queue=1, compression=None)


def payload(i: int) -> str:
    # Random base64: ~10 KiB that compression cannot shrink.
    return f"{i:06d} " + base64.b64encode(os.urandom(7500)).decode()


async def test_a_slow_client_is_closed_with_1008_and_the_room_carries_on(
    slow_rooms: Path, placement: Placement, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway cuts a client that has not taken its Close a grace period after it was sent
    # (2 s: one that never reads would hold its connection forever; the next test shows it).
    # This client starts reading only once the flood reached the other one, which on a loaded
    # machine came later than that: the cut reset the connection and its kernel dropped the
    # buffered frames and the Close, so the test failed now and then. A grace longer than
    # the flood makes what the client reads the thing tested.
    for module in (websocket_detached, websocket_asgi):
        monkeypatch.setattr(module, "CUT_AFTER_S", 30.0)

    async with started(slow_rooms, placement) as app:
        path = f"/room/{name}"
        stub = app.env.ROOM.get_by_name(name)
        slow = await non_reading_client(app, path)
        async with slow, connect(app.websocket_url(path), compression=None) as fast:
            assert await ask(fast, "count") == "2"
            total = flood_size(10_000)
            got: list[int] = []

            async def reader() -> None:
                while len(got) < total:
                    message = await fast.recv()
                    got.append(int(message[:6]))

            reading = asyncio.ensure_future(reader())
            for i in range(total):
                await stub.send_all(payload(i))
            await asyncio.wait_for(reading, 30)
            assert got == list(range(total))  # the reading client lost nothing
            # Now the slow client reads: what was buffered, then the 1008 close.
            seen: list[int] = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    seen.append(int((await recv(slow))[:6]))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert seen == list(range(len(seen)))
            assert len(seen) < total
            closes = await poll(stub.closes, lambda c: len(c) >= 1)
            assert [c[1] for c in closes] == [1008]
            assert await stub.sockets() == 1
            assert await ask(fast, "echo carries on") == "carries on"


async def test_a_client_that_never_reads_is_dropped(
    shared_apps: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    app_dir = shared_app(shared_apps, tmp_path_factory, {}, socket_queue=SLOW_QUEUE)

    async with started(app_dir, {}) as app:
        path = f"/room/{name}"
        stub = app.env.ROOM.get_by_name(name)
        slow = await non_reading_client(app, path)
        try:
            async with connect(app.websocket_url(path)) as fast:
                assert await ask(fast, "count") == "2"
                taken = 0

                async def keep_reading() -> None:
                    nonlocal taken
                    async for _ in fast:
                        taken += 1

                reader = asyncio.ensure_future(keep_reading())
                for i in range(flood_size(10_000)):
                    await stub.send_all(payload(i))
                await poll(stub.sockets, lambda n: n == 1, timeout=5)
                reader.cancel()
                assert taken > 0, "the reading client kept receiving"
        finally:
            slow.transport.abort()
            await slow.wait_closed()


# ---- across gateways (Ray) --------------------------------------------------------------------


def lab_url(server: Server | TestApp, name: str) -> str:
    return "ws" + server.url.removeprefix("http") + f"/lab/{name}"


def kill_server(server: Server) -> None:
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)


@pytest.mark.ray
async def test_broadcast_reaches_the_clients_of_every_gateway(
    app_copy: Callable[[str], Path],
    gateway: Callable[..., Server],
    name: str,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app_dir = kill_hosts_after(make_app(app_copy("rooms")))
    server_a, server_b = gateway(app_dir), gateway(app_dir)

    async with (
        connect(lab_url(server_a, name) + "?tags=a") as a1,
        connect(lab_url(server_a, name)) as a2,
        connect(lab_url(server_b, name) + "?tags=b") as b1,
        connect(lab_url(server_b, name) + "?tags=a") as b2,
    ):
        every = (a1, a2, b1, b2)
        sids = {ws: str(await ask(ws, "sid")) for ws in every}
        gateway_of = {ws: sid.split(".")[0] for ws, sid in sids.items()}
        assert gateway_of[a1] == gateway_of[a2] != gateway_of[b1] == gateway_of[b2]
        await a1.send("broadcast from a")
        for ws in every:
            assert await recv(ws) == "from a"
        await b1.send("broadcast from b")
        for ws in every:
            assert await recv(ws) == "from b"
        await b1.send("tagged a to tag a")  # one socket on each gateway
        assert await recv(a1) == "to tag a"
        assert await recv(b2) == "to tag a"
        for ws in (a2, b1):
            assert await ask(ws, "echo marker") == "marker"

        kill_server(server_b)
        for ws in (b1, b2):
            await closed_by_server(ws)  # their gateway is gone
        await a2.send("broadcast after b")
        for ws in (a1, a2):
            assert await recv(ws) == "after b"


@pytest.mark.ray
async def test_a_lost_gateways_sockets_close_with_1006(
    app_copy: Callable[[str], Path],
    gateway: Callable[..., Server],
    name: str,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app_dir = kill_hosts_after(make_app(app_copy("rooms")))
    server_b = gateway(app_dir)

    async with (
        started(app_dir, {"ray": True}) as app,  # gateway A, in this process
        connect(lab_url(app, name)) as a1,
        connect(lab_url(app, name)) as a2,
        connect(lab_url(server_b, name)) as b1,
        connect(lab_url(server_b, name)) as b2,
    ):
        lab = app.env.LAB.get_by_name(name)
        sids = {ws: str(await ask(ws, "sid")) for ws in (a1, a2, b1, b2)}
        assert await lab.sockets() == 4
        kill_server(server_b)
        for ws in (b1, b2):
            await closed_by_server(ws)
        closes = await poll(lab.closes, lambda c: len(c) >= 2, timeout=10)
        assert sorted(c[0] for c in closes) == sorted([sids[b1], sids[b2]])
        assert [[c[1], c[3]] for c in closes] == [[1006, False], [1006, False]]
        assert await lab.sockets() == 2
        assert await ask(a1, "count") == "2"
