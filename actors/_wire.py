"""The direct event stream between a caller process and a host: its two ends.

Ray places and restarts hosts; events do not travel as Ray calls (about 1.4 ms of CPU
each) but as msgpack frames (:mod:`actors._frames`) over one TCP connection per (caller
process, host).

A connection must prove it knows the host's token (handed out through Ray, so only members
of the Ray cluster have it) before any event is read. Until it has, it costs its host little:
its first bytes (at most ``HELLO_BYTES``) go to a small pure-Python reader, the full-size
unpacker and the writer are made only for a verified caller, and one that does not say HELLO
within ``HANDSHAKE_TIMEOUT_S`` is cut (each refusal logged, rate-limited).

Frames leave through a :class:`~actors._frame_writer.FrameWriter`: those of one loop
iteration in one write, and, on a caller's side, bounded while its host does not read
(``host_link_bytes``: past it a call fails at once with :class:`Overloaded`); an event whose
caller gives up (its task is cancelled, or the HTTP client it is for leaves, see
:mod:`actors._client_gone`) before its frame left is withdrawn.

Bodies that stream (a FETCH event's ``streams``, see :mod:`actors._streams`) travel in stream
frames beside their event, each end keeping the connection's streams in a
:class:`~actors._stream_table.StreamTable`: the caller opens a request body before its event's
frame, the host a reply body before the reply's head.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import msgpack
import msgpack.fallback

from raydo.storage import codec
from raydo.storage.limits import Limits

from ._client_gone import client_gone
from ._errors import (
    HostUnavailable,
    ObjectError,
    Overloaded,
    RaydoError,
    StreamBroken,
    error_from_wire,
)
from ._frame_writer import FrameWriter, QueuedEvent
from ._frames import (
    CALLER_READS,
    HOST_READS,
    Fail,
    Hello,
    Ok,
    PushFrame,
    Sockets,
    StreamCancel,
    StreamChunk,
    StreamCredit,
    StreamEnd,
    StreamOpen,
    Welcome,
    decode_frame,
    read_event,
)
from ._stream_table import StreamTable, WireHostStreams
from ._streams import CallerStreams
from ._throttled_log import ThrottledWarning
from .types import Event, EventKind

_STREAM_FRAMES = (StreamOpen, StreamChunk, StreamEnd, StreamCredit, StreamCancel)

log = logging.getLogger("raydo.wire")

HANDSHAKE_TIMEOUT_S = 3.0
HELLO_BYTES = 4096


def max_frame_bytes(limits: Limits) -> int:
    return limits.message_bytes + limits.request_bytes + (1 << 20)


class GatewaySide(Protocol):
    """What a connection from a gateway process needs of its host's WebSockets
    (:class:`~actors.websockets.HostSockets`)."""

    def attach_gateway(self, gateway: str, writer: Callable[[list[Any]], None]) -> None: ...
    def detach_gateway(self, gateway: str, writer: Callable[[list[Any]], None]) -> None: ...
    def announce_sockets(self, gateway: str, sockets: list[list[str]]) -> None: ...


class HostSide(Protocol):
    """What a connection needs of its host: its intake, and its one collaborator for
    WebSockets."""

    @property
    def sockets(self) -> GatewaySide: ...
    def deliver(self, event: Event) -> asyncio.Future[Any]: ...
    def forget_caller(self, caller: str) -> None: ...


_strangers = ThrottledWarning(log)
"""Connections to a host's port refused before or at their HELLO (every host of a process)."""


class HostServerProtocol(asyncio.Protocol):
    """The host's side of one caller's connection."""

    def __init__(self, host: HostSide, token: str, label: str, limits: Limits) -> None:
        self._host = host
        self._deliver = host.deliver
        self._forget = host.forget_caller
        self._gateway: str | None = None
        # One bound method, kept: attach and detach must see the same writer object.
        self._pusher: Callable[[list[Any]], None] = self._push
        self._token = token
        self._label = label
        self._frame_bytes = max_frame_bytes(limits)
        # Before HELLO: what arrived (at most HELLO_BYTES) and a small reader of it; the
        # C unpacker costs about 40 KiB however small its buffer, so it waits for a caller.
        self._greeting: bytearray | None = bytearray()
        self._hello_reader: msgpack.fallback.Unpacker | None = msgpack.fallback.Unpacker(
            raw=False, max_buffer_size=HELLO_BYTES
        )
        self._unpacker: msgpack.Unpacker | None = None
        self._caller: str | None = None
        self._transport: asyncio.Transport | None = None
        self._writer: FrameWriter | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._limits = limits
        self._streams: StreamTable | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        # A stranger that never completes HELLO must not hold a connection open.
        self._timer = asyncio.get_running_loop().call_later(
            HANDSHAKE_TIMEOUT_S, self._end_if_anonymous
        )

    def _end_if_anonymous(self) -> None:
        self._timer = None
        if self._caller is None:
            self._refuse(f"no HELLO within {HANDSHAKE_TIMEOUT_S} s")

    def _refuse(self, why: str) -> None:
        _strangers.warn("closing a connection to %s: %s", self._label, why)
        self._greeting = self._hello_reader = None
        if self._transport is not None:
            self._transport.abort()

    def pause_writing(self) -> None:
        if self._writer is not None:
            self._writer.pause()

    def resume_writing(self) -> None:
        if self._writer is not None:
            self._writer.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._caller is not None:
            self._forget(self._caller)
        if self._gateway is not None:
            self._host.sockets.detach_gateway(self._gateway, self._pusher)
        if self._streams is not None:
            self._streams.close(StreamBroken(f"the caller's connection to {self._label} was lost"))
        self._writer = None
        self._greeting = self._hello_reader = None

    def _push(self, frame: list[Any]) -> None:
        if self._writer is not None:
            self._writer.write(PushFrame.pack(frame))

    def data_received(self, data: bytes) -> None:
        if self._unpacker is None:
            self._greet(data)
            return
        try:
            self._unpacker.feed(data)
            for frame in self._unpacker:
                self._frame(frame)
        except Exception as exc:  # noqa: BLE001 - anything malformed ends the connection only
            log.warning("closing a connection to %s: %s", self._label, exc)
            assert self._transport is not None
            self._transport.abort()

    def _greet(self, data: bytes) -> None:
        """Read a stranger's first bytes: a verified HELLO makes it a caller, and what came
        after the HELLO is read as a caller's frames."""
        greeting, reader = self._greeting, self._hello_reader
        if greeting is None or reader is None:
            return  # refused already
        greeting += data
        if len(greeting) > HELLO_BYTES:  # a HELLO is tiny: refuse to buffer more
            self._refuse(f"no HELLO in its first {HELLO_BYTES} bytes")
            return
        try:
            reader.feed(data)
            frame = decode_frame(reader.unpack(), HOST_READS)
        except msgpack.OutOfData:
            return  # the rest of the HELLO is on its way
        except Exception as exc:  # noqa: BLE001 - anything malformed ends the connection only
            self._refuse(f"malformed HELLO: {exc}")
            return
        if not isinstance(frame, Hello):
            self._refuse("the first frame must be HELLO")
            return
        if not hmac.compare_digest(frame.token.encode(), self._token.encode()):
            self._refuse("wrong token")
            return
        rest = bytes(greeting[reader.tell() :])
        self._greeting = self._hello_reader = None
        self._welcome(frame)
        if rest:
            self.data_received(rest)

    def _welcome(self, hello: Hello) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert self._transport is not None
        self._unpacker = codec.unpacker(self._frame_bytes)
        self._writer = FrameWriter(self._transport)
        self._streams = StreamTable(self._writer.write, self._limits, self._label, self._writer)
        self._caller, self._gateway = hello.caller, hello.gateway
        self._writer.write(Welcome(self._label).encode())
        self._host.sockets.attach_gateway(self._gateway, self._pusher)

    def _frame(self, raw: Any) -> None:
        caller = self._caller
        assert caller is not None
        numbered = read_event(raw, caller)  # the hot path: no record is made
        if numbered is not None:
            req_id, event = numbered
            if event.kind is EventKind.FETCH:
                assert self._streams is not None
                event.streams = WireHostStreams(self._streams, req_id)
            self._deliver(event).add_done_callback(lambda f: self._reply(req_id, f))
            return
        frame = decode_frame(raw, HOST_READS)
        if isinstance(frame, _STREAM_FRAMES):
            assert self._streams is not None
            self._streams.received(frame)
        elif isinstance(frame, Sockets):
            assert self._gateway is not None
            self._host.sockets.announce_sockets(self._gateway, frame.sockets)
        else:
            raise ValueError("expected an EVENT frame")

    def _reply(self, req_id: int, future: asyncio.Future[Any]) -> None:
        writer = self._writer
        if writer is None:
            return
        if future.cancelled():
            cancelled = HostUnavailable("cancelled", retryable=False)
            writer.write(Fail.pack(req_id, cancelled.to_wire()))
            return
        exc = future.exception()
        if exc is None:
            writer.write(Ok.pack(req_id, future.result()))
        elif isinstance(exc, RaydoError):
            writer.write(Fail.pack(req_id, exc.to_wire()))
        else:
            writer.write(Fail.pack(req_id, ObjectError(type(exc).__name__, str(exc)).to_wire()))


class HostLink(asyncio.Protocol):
    """A caller's connection to one host: sends events, matches replies to them."""

    def __init__(
        self,
        label: str,
        limits: Limits,
        on_push: Callable[[list[Any]], None] | None = None,
        on_lost: Callable[[HostLink], None] | None = None,
    ) -> None:
        self.label = label
        self._on_push = on_push
        self._on_lost = on_lost
        self.caller = os.urandom(8).hex()
        self.closed = False
        self._unpacker = codec.unpacker(max_frame_bytes(limits))
        self._buffer_limit = limits.host_link_bytes
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._fetches: dict[int, CallerStreams] = {}  # calls whose reply body may stream
        self._ids = itertools.count()
        self._writer: FrameWriter | None = None
        self._transport: asyncio.Transport | None = None
        self.streams = StreamTable(self._write_frame, limits, label, self)
        """The bodies streaming over this connection, both ways."""
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.endpoint: tuple[str, int, str] | None = None
        """The host's (address, port, token) this link was opened to."""
        self.last_heard = time.monotonic()
        """When the host last sent anything (monotonic): a host with events in flight that
        has been silent long is asked after (the placement's watch of its links)."""

    @classmethod
    async def open(
        cls,
        address: str,
        port: int,
        token: str,
        label: str,
        limits: Limits,
        timeout: float = 10.0,
        *,
        gateway: str = "",
        sockets: list[list[str]] | None = None,
        on_push: Callable[[list[Any]], None] | None = None,
        on_lost: Callable[[HostLink], None] | None = None,
    ) -> HostLink:
        """Connect, prove the token, say which gateway this is and which sockets of the
        host's objects it holds (after a reconnect, so the host knows them again)."""
        loop = asyncio.get_running_loop()
        _, link = await asyncio.wait_for(
            loop.create_connection(lambda: cls(label, limits, on_push, on_lost), address, port),
            timeout,
        )
        assert link._writer is not None
        link._writer.write(Hello(token, link.caller, gateway).encode())
        if gateway:  # even none: the host closes the sockets this gateway no longer holds
            link._writer.write(Sockets(sockets or []).encode())
        await asyncio.wait_for(asyncio.shield(link.welcomed), timeout)
        link.endpoint = (address, port, token)
        return link

    @property
    def held_bytes(self) -> int:
        """Bytes of frames the host has not taken yet (bounded by ``host_link_bytes``)."""
        return 0 if self._writer is None else self._writer.held_bytes

    async def call(self, event: Event) -> Any:
        """Send ``event`` and wait for its reply payload.

        In order: :class:`Overloaded` at once when the frames waiting for the host would
        pass ``host_link_bytes``; else the frame is queued (its ``seq`` is stamped when it is
        written), after the ``OPEN`` of its request body if that streams (the
        event's ``streams`` get the body's sink). If the caller is cancelled, or the HTTP
        client it serves leaves (:data:`~actors._client_gone.client_gone`), before the frame
        was written, the frame is withdrawn and the host never sees the event.
        """
        writer = self._writer
        if self.closed or writer is None:
            raise HostUnavailable(f"the connection to {self.label} is closed", retryable=True)
        req_id = next(self._ids)
        event.caller = self.caller
        streams = event.streams
        if isinstance(streams, CallerStreams):
            sink = streams.request_sink
            body = None
            if sink is not None and not sink.done():
                body = self.streams.open_out(req_id)  # its OPEN frame goes first
            try:
                queued = writer.write_event(req_id, event)
            except Overloaded as exc:
                if body is not None:
                    body.end(exc)
                raise
            if body is not None:
                sink.set_result(body)  # type: ignore[union-attr]
            self._fetches[req_id] = streams
        else:
            queued = writer.write_event(req_id, event)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        try:
            gone = client_gone.get()
            if gone is not None and queued.waiting:
                await self._until_answered_or_gone(future, queued, gone)
            return await future
        except asyncio.CancelledError:
            writer.withdraw(queued)
            raise
        finally:
            self._pending.pop(req_id, None)
            self._fetches.pop(req_id, None)

    async def _until_answered_or_gone(
        self,
        future: asyncio.Future[Any],
        queued: QueuedEvent,
        gone: Callable[[], Awaitable[None]],
    ) -> None:
        """Wait for the answer while watching the client; a client that leaves while its
        frame still waits takes the frame back (the call then fails)."""
        watch = asyncio.ensure_future(gone())
        try:
            await asyncio.wait((future, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        if not future.done() and self._writer is not None and self._writer.withdraw(queued):
            raise HostUnavailable(
                f"the client left before its event was sent to {self.label}; it did not run",
                retryable=True,
            )

    @property
    def waiting(self) -> bool:
        """True while events sent on this link wait for their replies."""
        return bool(self._pending)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abandon(self, why: str) -> None:
        """Give the connection up now (a host that stopped answering): each event in flight
        fails with ``why`` (it may or may not have run), and the connection is aborted, not
        closed, since a close would wait for a write buffer the host never reads."""
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(HostUnavailable(why, retryable=False))
        if self._transport is not None:
            self._transport.abort()
        self.closed = True

    def _write_frame(self, frame: tuple[Any, ...]) -> None:
        if self._writer is not None:
            self._writer.write(frame)

    # ---- where request bodies' chunks go (a ChunkLink over the writer, once connected) ----

    def send_chunk(self, stream_id: int, frame: tuple[Any, ...]) -> None:
        if self._writer is not None:
            self._writer.send_chunk(stream_id, frame)

    def has_room(self, size: int) -> bool:
        return self._writer is None or self._writer.has_room(size)

    def wait_room(self, woken: asyncio.Event) -> None:
        if self._writer is None:
            woken.set()
        else:
            self._writer.wait_room(woken)

    def withdraw_chunks(self, stream_id: int) -> int:
        return 0 if self._writer is None else self._writer.withdraw_chunks(stream_id)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._writer = FrameWriter(self._transport, self._buffer_limit)

    def pause_writing(self) -> None:
        if self._writer is not None:
            self._writer.pause()

    def resume_writing(self) -> None:
        if self._writer is not None:
            self._writer.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._writer = None
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(f"{self.label} closed the connection"))
            self.welcomed.exception()  # read here so an unawaited failure is not logged
        if self._on_lost is not None:
            self._on_lost(self)
        self.streams.close(StreamBroken(f"the connection to {self.label} was lost"))
        self._fetches.clear()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(
                    HostUnavailable(
                        f"the connection to {self.label} was lost with the event in flight;"
                        " it may or may not have run",
                        retryable=False,
                    )
                )

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        try:
            self._unpacker.feed(data)
            for frame in self._unpacker:
                self._frame(frame)
        except (
            ValueError,
            msgpack.ExtraData,
            msgpack.FormatError,
            msgpack.StackError,
            TypeError,
            codec.DecodeError,
        ) as exc:
            log.error("malformed frame from %s: %s", self.label, exc)
            assert self._transport is not None
            self._transport.abort()

    def _frame(self, raw: Any) -> None:
        frame = decode_frame(raw, CALLER_READS)
        if isinstance(frame, (Ok, Fail)):
            future = self._pending.get(frame.req_id)
            if future is None or future.done():
                return
            if isinstance(frame, Ok):
                future.set_result(frame.reply)
            else:
                future.set_exception(error_from_wire(frame.error))
        elif isinstance(frame, StreamOpen):
            self._reply_stream(frame.stream_id)
        elif isinstance(frame, _STREAM_FRAMES):
            self.streams.received(frame)
        elif isinstance(frame, PushFrame):
            if self._on_push is not None:
                self._on_push(frame.push)
        elif isinstance(frame, Welcome) and not self.welcomed.done():
            self.welcomed.set_result(None)

    def _reply_stream(self, req_id: int) -> None:
        """The host streams the reply of event ``req_id``: its body's pipe, for the caller
        to find beside the reply's head (refused when that call is gone)."""
        streams = self._fetches.get(req_id)
        if streams is None or streams.reply is not None:
            self.streams.refuse(req_id, StreamBroken("nobody waits for this reply any more"))
            return
        streams.reply = self.streams.opened(req_id)
