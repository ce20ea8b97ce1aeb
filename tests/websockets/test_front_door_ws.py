"""The WebSocket front door under hostile clients (issue 12, item 7): a client that pings and
never reads is closed with 1008 before its pongs cost the gateway much, and thousands of
malformed handshakes and frames are each refused with the right answer while the gateway
keeps serving.

The malformed input is generated from a seeded ``random.Random`` (the same cases every run):
each case says what a correct server answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from raydo.gateway.testing import TestApp
from tests.placements import local_only
from tests.polling import poll
from tests.websockets.clients import ask, connect, port_of
from tests.websockets.rooms import Room, new_app, started
from tests.websockets.test_websockets import upgrade_request

T = TypeVar("T")
MiB = 1024 * 1024
CONTROL_LIMIT = 256 * 1024
"""``websocket_control_bytes`` of the ping test's app (the default is 1 MiB)."""
PINGED = 24 * MiB
"""Pings the test's client sends without reading: far past what the kernel buffers."""


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """One frame as a client writes it (masked unless told otherwise)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def opened(
    port: int, path: str, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection past a real upgrade (optionally with a small receive buffer)."""
    raw = socket.socket()
    if rcvbuf is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=raw)
    writer.write(upgrade_request(port, path))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def close_code(frames: bytes) -> int | None:
    """The code of the first Close frame among the server's (unmasked) frames, if any."""
    at = 0
    while at + 2 <= len(frames):
        opcode, size = frames[at] & 0x0F, frames[at + 1] & 0x7F
        at += 2
        if size == 126:
            size, at = struct.unpack("!H", frames[at : at + 2])[0], at + 2
        elif size == 127:
            size, at = struct.unpack("!Q", frames[at : at + 8])[0], at + 8
        if opcode == 0x8:
            return int.from_bytes(frames[at : at + 2], "big") if size >= 2 else 1005
        at += size
    return None


async def finish(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def test_a_client_that_pings_and_never_reads_is_closed_with_1008(
    tmp_path: Path, name: str
) -> None:
    app_dir = new_app(tmp_path / "rooms")
    toml = app_dir / "raydo.toml"
    toml.write_text(toml.read_text() + f"\n[limits]\nwebsocket_control_bytes = {CONTROL_LIMIT}\n")
    async with started(app_dir, {}) as app:
        port, path = port_of(app.url), f"/room/{name}"
        room = Room(app.websocket_url(path), app.env.ROOM.get_by_name(name))
        reader, writer = await opened(port, path, rcvbuf=4096)
        ping = client_frame(0x9, b"p" * 125)  # the largest control frame: 131 bytes
        burst = ping * 1000
        before = rss()
        for _ in range(PINGED // len(burst)):  # "250 MiB of pings" took the gateway up 239 MiB
            writer.write(burst)
            await asyncio.wait_for(writer.drain(), 10)
        grown = rss() - before
        assert grown < PINGED // 4, f"the gateway grew {grown / MiB:.0f} MiB"
        # Reading at last: the pongs it held, then a Close with 1008.
        frames = b""
        while close_code(frames) is None:
            chunk = await asyncio.wait_for(reader.read(1 << 16), 20)
            assert chunk, "the connection ended without a Close frame"
            frames += chunk
        assert close_code(frames) == 1008
        writer.write(client_frame(0x8, struct.pack("!H", 1008)))
        with contextlib.suppress(ConnectionError):
            while await asyncio.wait_for(reader.read(1 << 16), 10):
                pass  # the rest, until the server ends the connection
        await finish(writer)
        closes = await poll(room.stub.closes, lambda c: len(c) >= 1)
        assert [c[1] for c in closes] == [1008]
        async with connect(room.url) as ws:
            assert await ask(ws, "echo still serving") == "still serving"


# ---- the fuzzing pass -------------------------------------------------------------------------

Case = tuple[str, bytes, set[int]]
"""What a case sends after a real upgrade, and the close codes a correct server may answer."""


def invalid_utf8(rng: random.Random) -> bytes:
    good = "".join(rng.choice("abcé€") for _ in range(rng.randrange(0, 20))).encode()
    bad = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"])
    return good + bad + good


def payload(rng: random.Random, most: int = 200) -> bytes:
    return rng.randbytes(rng.randrange(0, most))


FRAMES: list[Callable[[random.Random], Case]] = [
    lambda r: ("unmasked", client_frame(r.choice([1, 2]), payload(r), masked=False), {1002}),
    lambda r: (
        "reserved bits",
        client_frame(r.choice([1, 2, 9]), b"", rsv=r.choice([1, 2, 3, 4, 5, 6, 7])),
        {1002},
    ),
    lambda r: (
        "reserved opcode",
        client_frame(r.choice([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload(r)),
        {1002},
    ),
    lambda r: (
        "long control",
        client_frame(r.choice([8, 9, 10]), r.randbytes(126 + r.randrange(500))),
        {1002},
    ),
    lambda r: (
        "fragmented control",
        client_frame(r.choice([9, 10]), payload(r, 100), fin=False),
        {1002},
    ),
    lambda r: ("orphan continuation", client_frame(0, payload(r)), {1002}),
    lambda r: (
        "interleaved data",
        client_frame(1, b"a", fin=False) + client_frame(r.choice([1, 2]), b"b"),
        {1002},
    ),
    lambda r: ("invalid UTF-8 text", client_frame(1, invalid_utf8(r)), {1007}),
    lambda r: ("one-byte close", client_frame(8, r.randbytes(1)), {1002}),
    lambda r: (
        "bad close code",
        client_frame(
            8, struct.pack("!H", r.choice([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]))
        ),
        {1002},
    ),
    lambda r: (
        "bad close reason",
        client_frame(8, struct.pack("!H", 1000) + invalid_utf8(r)),
        {1007},
    ),
]


def handshakes(port: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """Malformed upgrade requests; each must be refused with a 4xx, never upgraded."""
    good = upgrade_request(port, "/room/fuzz").decode()
    lines = good.split("\r\n")

    def without(header: str) -> bytes:
        return "\r\n".join(x for x in lines if not x.startswith(header)).encode()

    def replaced(header: str, value: str) -> bytes:
        return "\r\n".join(
            f"{header}: {value}" if x.startswith(header) else x for x in lines
        ).encode()

    noise = rng.randbytes(rng.randrange(1, 200)).replace(b"\r\n\r\n", b"")
    return [
        ("no key", without("Sec-WebSocket-Key")),
        ("no version", without("Sec-WebSocket-Version")),
        ("version 8", replaced("Sec-WebSocket-Version", rng.choice(["8", "12", "14", "x"]))),
        ("short key", replaced("Sec-WebSocket-Key", rng.choice(["abc", "", "!!!!", "YQ=="]))),
        ("no upgrade", without("Upgrade")),
        ("upgrade to h2c", replaced("Upgrade", "h2c")),
        ("garbage", noise + b"\r\n\r\n"),
    ]


async def one_frame_case(port: int, path: str, case: Case) -> tuple[str, int | None, set[int]]:
    what, data, expected = case
    reader, writer = await opened(port, path)
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        frames = await asyncio.wait_for(reader.read(), 10)
    finally:
        await finish(writer)
    return what, close_code(frames), expected


async def one_handshake_case(port: int, what: str, data: bytes) -> tuple[str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        try:  # the answer's head is enough (a refusal may keep the connection alive)
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except asyncio.IncompleteReadError as ended:
            answer = ended.partial
    finally:
        await finish(writer)
    return what, answer


@local_only
async def test_thousands_of_malformed_frames_and_handshakes_are_refused_and_it_keeps_serving(
    app: TestApp, room: Room, name: str
) -> None:
    rng = random.Random(12)
    port, path = port_of(app.url), f"/room/{name}"
    limit = asyncio.Semaphore(16)

    async def bounded(case: Awaitable[T]) -> T:
        async with limit:  # the coroutine starts only once it holds the semaphore
            return await case

    async with connect(room.url) as keeper:
        assert await ask(keeper, "count") == "1"
        before = rss()
        frame_cases = [rng.choice(FRAMES)(rng) for _ in range(2000)]
        answers = await asyncio.gather(
            *(bounded(one_frame_case(port, path, c)) for c in frame_cases)
        )
        wrong = [(what, code) for what, code, expected in answers if code not in expected]
        assert wrong == [], wrong[:10]
        shakes = [case for _ in range(100) for case in handshakes(port, rng)]
        refused = await asyncio.gather(
            *(bounded(one_handshake_case(port, w, d)) for w, d in shakes)
        )
        upgraded = [what for what, answer in refused if not answer.startswith(b"HTTP/1.1 4")]
        assert upgraded == []
        # Every accepted socket's object heard its close; the gateway keeps serving.
        await poll(room.stub.sockets, lambda n: n == 1, timeout=30)
        assert await ask(keeper, "echo still serving") == "still serving"
        assert rss() - before < 64 * MiB
