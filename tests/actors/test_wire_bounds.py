"""The direct stream's buffers are bounded (issue 12, item 7): a caller's frames for a host that
does not read, and what a stranger on a host's port costs before its HELLO."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import msgpack
import pytest

from raydo.actors import HostUnavailable, Overloaded
from raydo.actors import _wire as wire
from raydo.actors._client_gone import client_gone
from raydo.actors._frames import EventFrame, Hello, read_event
from raydo.actors._throttled_log import ThrottledWarning
from raydo.actors._wire import HostLink, HostServerProtocol
from raydo.actors.types import Event, EventKind
from raydo.storage import codec
from raydo.storage.limits import DEFAULT_LIMITS, MiB

BODY = b"x" * MiB


class NoSockets:
    """A host's WebSockets, for a host with none."""

    def attach_gateway(self, gateway: str, writer: Callable[[list[Any]], None]) -> None:
        pass

    def detach_gateway(self, gateway: str, writer: Callable[[list[Any]], None]) -> None:
        pass

    def announce_sockets(self, gateway: str, sockets: list[list[str]]) -> None:
        pass


@dataclass
class RecordingHost:
    """What a host connection needs of its host: it answers each event with its payload's
    size, and records the events it got, in the order it got them."""

    events: list[Event] = field(default_factory=list)
    sockets: NoSockets = field(default_factory=NoSockets)

    def deliver(self, event: Event) -> asyncio.Future[Any]:
        self.events.append(event)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(len(event.payload))
        return future

    def forget_caller(self, caller: str) -> None:
        pass


@dataclass
class Served:
    host: RecordingHost
    port: int
    connections: list[HostServerProtocol]


@contextlib.asynccontextmanager
async def served() -> AsyncIterator[Served]:
    host = RecordingHost()
    connections: list[HostServerProtocol] = []

    def connection() -> HostServerProtocol:
        protocol = HostServerProtocol(host, "token", "ROOM/shard/0", DEFAULT_LIMITS)
        connections.append(protocol)
        return protocol

    server = await asyncio.get_running_loop().create_server(connection, "127.0.0.1", 0)
    try:
        yield Served(host, server.sockets[0].getsockname()[1], connections)
    finally:
        server.close()
        await server.wait_closed()


def event(n: int) -> Event:
    return Event("ROOM", "ab" * 32, None, f"chain-{n}", EventKind.RPC, BODY)


def paused(protocol: HostServerProtocol) -> asyncio.Transport:
    transport = cast(asyncio.Transport, protocol._transport)
    transport.pause_reading()
    return transport


def test_a_frame_split_at_its_seq_is_the_whole_frame() -> None:
    packer = codec.packer()
    one = Event("ROOM", "ab" * 32, "n", "c", EventKind.FETCH, [b"x", None], seq=7, trace={"a": 1})
    whole = packer.pack(EventFrame.pack(3, one))
    split = EventFrame.pack_head(packer, 3, 7) + bytes(EventFrame.pack_fields(packer, one))
    assert split == whole
    assert read_event(msgpack.unpackb(split), "caller") == (3, replace(one, caller="caller"))


async def test_a_host_that_does_not_read_costs_its_callers_a_bounded_buffer() -> None:
    limits = replace(DEFAULT_LIMITS, host_link_bytes=8 * MiB)
    async with served() as server:
        link = await HostLink.open("127.0.0.1", server.port, "token", "ROOM/shard/0", limits)
        transport = paused(server.connections[0])
        calls = [asyncio.ensure_future(link.call(event(n))) for n in range(60)]
        await asyncio.sleep(0.3)
        refused = [c for c in calls if c.done() and isinstance(c.exception(), Overloaded)]
        waiting = [c for c in calls if not c.done()]
        # Past the bound, calls fail at once; what waits stays under it.
        assert len(refused) >= 30 and len(waiting) + len(refused) == 60
        assert link.held_bytes <= limits.host_link_bytes + MiB
        assert "host_link_bytes" in str(refused[0].exception())
        # Callers that give up take their unsent frames back: the memory comes back.
        held_before = link.held_bytes
        for call in waiting[1:]:
            call.cancel()
        await asyncio.gather(*waiting[1:], return_exceptions=True)
        assert link.held_bytes < held_before - 2 * MiB
        # The host reads again: it gets the events that were not withdrawn, numbered with no
        # gap, and a later call goes through.
        transport.resume_reading()
        assert await waiting[0] == MiB
        assert await link.call(event(99)) == MiB
        seqs = [e.seq for e in server.host.events]
        assert seqs == list(range(len(seqs))) and server.host.events[-1].chain == "chain-99"
        assert len(server.host.events) < 30
        link.close()


async def test_a_departed_clients_unsent_event_is_withdrawn() -> None:
    async with served() as server:
        link = await HostLink.open(
            "127.0.0.1", server.port, "token", "ROOM/shard/0", DEFAULT_LIMITS
        )
        transport = paused(server.connections[0])
        filler = [asyncio.ensure_future(link.call(event(n))) for n in range(24)]
        await asyncio.sleep(0.2)  # the transport is full: later frames wait in the link
        left = asyncio.Event()

        async def gone() -> None:
            await left.wait()

        watched = client_gone.set(gone)
        try:
            call = asyncio.ensure_future(link.call(event(50)))
        finally:
            client_gone.reset(watched)
        await asyncio.sleep(0.05)
        held = link.held_bytes
        left.set()
        with pytest.raises(HostUnavailable, match="client left"):
            await call
        assert link.held_bytes <= held - MiB
        transport.resume_reading()
        await asyncio.gather(*filler)
        assert "chain-50" not in [e.chain for e in server.host.events]
        link.close()


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


async def test_strangers_on_a_hosts_port_cost_it_almost_nothing_and_are_cut(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(wire, "HANDSHAKE_TIMEOUT_S", 1.0)
    monkeypatch.setattr(wire, "_strangers", ThrottledWarning(wire.log))
    count = 3000
    async with served() as server:
        gc.collect()
        before = rss()
        writers = []
        for _ in range(count):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"\x94\x00")  # the start of a HELLO that never ends
            writers.append(writer)
        await asyncio.sleep(0.3)
        assert len(server.connections) == count
        grown = rss() - before
        # Each costs its host (and, here, its client too) a few KiB, not the 40 of a
        # full-size unpacker made before the handshake.
        assert grown / count < 12 * 1024, f"{grown / count / 1024:.1f} KiB a connection"
        with caplog.at_level(logging.WARNING, logger="raydo.wire"):
            await asyncio.sleep(1.5)  # past the handshake timeout: every one is cut
        transports = [p._transport for p in server.connections]
        assert all(t is not None and t.is_closing() for t in transports)
        assert wire._strangers.count == count
        warnings = [r for r in caplog.records if "no HELLO within" in r.getMessage()]
        assert 1 <= len(warnings) <= 2  # rate-limited
        for writer in writers:
            writer.close()


async def test_a_hello_with_frames_after_it_in_one_read_is_taken_whole() -> None:
    async with served() as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        packer = codec.packer()
        hello = packer.pack(Hello("token", "c1", "g1").encode())
        frame = packer.pack(EventFrame.pack(0, replace(event(0), payload=b"hi")))
        writer.write(hello + frame)
        await asyncio.sleep(0.2)
        assert [e.chain for e in server.host.events] == ["chain-0"]
        assert server.connections[0]._unpacker is not None  # a caller now: full-size reader
        writer.close()


@pytest.mark.parametrize(
    "greeting",
    [
        codec.packer().pack(Hello("wrong", "c", "g").encode()),
        codec.packer().pack([1, 2, 3]),
        b"\xc1",  # never valid msgpack
        b"\x91" * 5000,  # deeper than any HELLO, and longer
        codec.packer().pack(["x" * 10_000]),
    ],
    ids=["wrong token", "not a hello", "invalid", "nested", "too long"],
)
async def test_a_bad_greeting_is_cut_at_once(greeting: bytes) -> None:
    async with served() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(greeting)
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed, nothing answered
        assert server.host.events == []
        writer.close()
