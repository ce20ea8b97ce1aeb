"""Stream frames on the direct stream between a caller and a host, against a peer that breaks
their rules: each breach ends that one stream with an error naming it, and every other event
and stream on the connection carries on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from raydo.actors import StreamBroken
from raydo.actors import _stream_table as stream_table
from raydo.actors._frames import FrameKind, Hello
from raydo.actors._streams import HostStreams
from raydo.actors._wire import HostServerProtocol
from raydo.actors.types import Event, EventKind
from raydo.storage.limits import DEFAULT_LIMITS

WINDOW = DEFAULT_LIMITS.stream_window_bytes


class NoSockets:
    def attach_gateway(self, gateway: str, writer: Callable[[list[Any]], None]) -> None:
        pass

    def detach_gateway(self, gateway: str, writer: Callable[[list[Any]], None]) -> None:
        pass

    def announce_sockets(self, gateway: str, sockets: list[list[str]]) -> None:
        pass


@dataclass
class StreamingHost:
    """A host stand-in: a FETCH event ``["read"]`` reads its request body and answers its
    size; ``["reply", n]`` streams a reply of ``n`` chunks of 64 KiB; anything else is
    answered with its payload's length. It owns (and awaits) the tasks that write replies."""

    sockets: NoSockets = field(default_factory=NoSockets)
    writers: set[asyncio.Task[None]] = field(default_factory=set)
    reply_errors: list[BaseException] = field(default_factory=list)

    def deliver(self, event: Event) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        streams: HostStreams | None = event.streams
        if event.kind is EventKind.FETCH and event.payload == ["read"] and streams is not None:
            task = asyncio.ensure_future(self._read(streams, future))
        elif event.kind is EventKind.FETCH and event.payload[0] == "reply" and streams:
            task = asyncio.ensure_future(self._reply(streams, event.payload[1], future))
        else:
            future.set_result(len(event.payload))
            return future
        self.writers.add(task)
        task.add_done_callback(self.writers.discard)
        return future

    async def _read(self, streams: HostStreams, future: asyncio.Future[Any]) -> None:
        assert streams.request is not None
        size = 0
        try:
            while (chunk := await streams.request.read()) is not None:
                size += len(chunk)
            future.set_result(size)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            future.set_result(f"{type(exc).__name__}: {exc}")

    async def _reply(self, streams: HostStreams, chunks: int, future: asyncio.Future[Any]) -> None:
        sink = streams.open_reply()
        future.set_result("head")
        try:
            for _ in range(chunks):
                await sink.write(b"r" * 65536)
            sink.end()
        except StreamBroken as exc:
            self.reply_errors.append(exc)

    def forget_caller(self, caller: str) -> None:
        pass


@dataclass
class Peer:
    """A raw caller speaking the wire's frames."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    unpacker: msgpack.Unpacker = field(
        default_factory=lambda: msgpack.Unpacker(raw=False, max_buffer_size=64 << 20)
    )
    seen: list[list[Any]] = field(default_factory=list)

    def send(self, *frames: Any) -> None:
        for frame in frames:
            self.writer.write(msgpack.packb(list(frame), use_bin_type=True))

    async def until(self, wanted: Callable[[list[Any]], bool], timeout: float = 10) -> list[Any]:
        """Read frames until one matches ``wanted``; it (the others are kept in ``seen``)."""
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.unpacker:
                    self.seen.append(frame)
                    if wanted(frame):
                        return list(frame)
                data = await self.reader.read(1 << 16)
                assert data, "the host closed the connection"
                self.unpacker.feed(data)


def event(req_id: int, kind: EventKind, payload: Any) -> list[Any]:
    return [
        FrameKind.EVENT,
        req_id,
        req_id,
        "ROOM",
        "ab" * 32,
        None,
        "chain",
        int(kind),
        payload,
        None,
    ]


def answer_to(req_id: int) -> Callable[[list[Any]], bool]:
    return lambda f: f[0] in (FrameKind.OK, FrameKind.FAIL) and f[1] == req_id


@contextlib.asynccontextmanager
async def connected() -> AsyncIterator[tuple[Peer, StreamingHost]]:
    host = StreamingHost()
    server = await asyncio.get_running_loop().create_server(
        lambda: HostServerProtocol(host, "token", "ROOM/shard/0", DEFAULT_LIMITS), "127.0.0.1", 0
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    peer = Peer(reader, writer)
    peer.send(Hello("token", "caller", "gateway").encode())
    await peer.until(lambda f: f[0] == FrameKind.WELCOME)
    try:
        yield peer, host
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        await asyncio.gather(*host.writers, return_exceptions=True)


async def test_hostile_stream_frames_break_only_their_stream() -> None:
    breaches = stream_table._breaches.count
    async with connected() as (peer, _):
        # A body streams properly beside every breach below, and arrives whole.
        peer.send(
            [FrameKind.OPEN, 1],
            event(1, EventKind.FETCH, ["read"]),
            [FrameKind.CHUNK, 1, b"a" * 1000],
        )

        # A chunk for a stream never opened: that stream is cancelled, with its reason.
        peer.send([FrameKind.CHUNK, 99, b"stray"])
        cancel = await peer.until(lambda f: f[0] == FrameKind.CANCEL and f[1] == 99)
        assert "unknown stream 99" in cancel[2][2]

        # More bytes than the window grants: credit overflow, that stream cancelled.
        peer.send([FrameKind.OPEN, 2], [FrameKind.CHUNK, 2, b"o" * (WINDOW + 1)])
        cancel = await peer.until(lambda f: f[0] == FrameKind.CANCEL and f[1] == 2)
        assert "credit overflow" in cancel[2][2]

        # Chunks after a stream's end: refused (logged), nothing else changes.
        peer.send([FrameKind.OPEN, 3], [FrameKind.END, 3, None], [FrameKind.CHUNK, 3, b"late"])

        peer.send([FrameKind.CHUNK, 1, b"b" * 1000], [FrameKind.END, 1, None])
        assert (await peer.until(answer_to(1)))[2] == 2000
        # And plain events are answered as ever.
        peer.send(event(4, EventKind.RPC, ["m", b""]))
        assert (await peer.until(answer_to(4)))[0] == FrameKind.OK
    assert stream_table._breaches.count - breaches == 3


async def test_credit_past_the_window_ends_that_reply_and_nothing_else() -> None:
    async with connected() as (peer, host):
        peer.send(event(1, EventKind.FETCH, ["reply", 100]))
        await peer.until(lambda f: f[0] == FrameKind.OPEN and f[1] == 1)
        assert (await peer.until(answer_to(1)))[2] == "head"
        peer.send([FrameKind.CREDIT, 1, 10 * WINDOW])
        end = await peer.until(lambda f: f[0] == FrameKind.END and f[1] == 1)
        assert "credit overflow" in end[2][2]
        peer.send(event(2, EventKind.RPC, ["still", b"here"]))
        assert (await peer.until(answer_to(2)))[2] == 2
        await asyncio.gather(*host.writers)
        assert len(host.reply_errors) == 1 and "credit overflow" in str(host.reply_errors[0])


async def test_a_reply_stream_waits_for_credit_and_takes_what_the_reader_grants() -> None:
    async with connected() as (peer, host):
        peer.send(event(1, EventKind.FETCH, ["reply", 64]))  # 4 MiB, four windows
        received = 0

        def chunk(frame: list[Any]) -> bool:
            return frame[0] in (FrameKind.CHUNK, FrameKind.END) and frame[1] == 1

        while received < WINDOW:
            frame = await peer.until(chunk)
            received += len(frame[2])
        assert received == WINDOW  # no more than the window without credit
        with contextlib.suppress(TimeoutError):
            await peer.until(chunk, timeout=0.3)
            raise AssertionError("the host sent past its window")
        while True:
            peer.send([FrameKind.CREDIT, 1, WINDOW])
            frame = await peer.until(chunk)
            if frame[0] == FrameKind.END:
                break
            received += len(frame[2])
            while received % WINDOW:
                frame = await peer.until(chunk)
                received += len(frame[2])
        assert frame[2] is None and received == 64 * 65536
        assert host.reply_errors == []
