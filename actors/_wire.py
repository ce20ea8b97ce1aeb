"""The direct event stream between a caller process and a host: its two ends.

Ray places and restarts hosts; events do not travel as Ray calls (about 1.4 ms of CPU
each) but as msgpack frames (:mod:`actors._frames`) over one TCP connection per (caller
process, host).

A connection must prove it knows the host's token (handed out through Ray, so only members
of the Ray cluster have it) before any event is read. Frames written in one loop iteration
leave in one write, so a busy host or gateway batches by itself.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
from collections.abc import Callable
from typing import Any, Protocol, cast

import msgpack

from raydo.storage import codec
from raydo.storage.limits import Limits

from ._errors import HostUnavailable, ObjectError, RaydoError, error_from_wire
from ._frames import (
    CALLER_READS,
    HOST_READS,
    EventFrame,
    Fail,
    Hello,
    Ok,
    PushFrame,
    Sockets,
    Welcome,
    decode_frame,
    read_event,
)
from .types import Event

log = logging.getLogger("raydo.wire")

HANDSHAKE_TIMEOUT_S = 3.0
HELLO_BYTES = 4096


def max_frame_bytes(limits: Limits) -> int:
    return limits.message_bytes + limits.request_bytes + (1 << 20)


class _FrameWriter:
    """Packs frames and writes those of one loop iteration together."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._packer = codec.packer()
        self._out: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, frame: tuple[Any, ...]) -> None:
        """Queue an encoded frame (a record's ``encode()``) for the end of this iteration."""
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(self._packer.pack(frame))

    def _flush(self) -> None:
        out, self._out = self._out, []
        if not self._transport.is_closing():
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))


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


class HostServerProtocol(asyncio.Protocol):
    """The host's side of one caller's connection."""

    def __init__(self, host: HostSide, token: str, label: str, limits: Limits) -> None:
        self._host = host
        self._deliver = host.deliver
        self._forget = host.forget_caller
        self._gateway: str | None = None
        self._anonymous_bytes = 0
        # One bound method, kept: attach and detach must see the same writer object.
        self._pusher: Callable[[list[Any]], None] = self._push
        self._token = token
        self._label = label
        self._unpacker = codec.unpacker(max_frame_bytes(limits))
        self._caller: str | None = None
        self._transport: asyncio.Transport | None = None
        self._writer: _FrameWriter | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._writer = _FrameWriter(self._transport)
        # A stranger that never completes HELLO must not hold a connection open.
        asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT_S, self._end_if_anonymous)

    def _end_if_anonymous(self) -> None:
        if self._caller is None and self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._caller is not None:
            self._forget(self._caller)
        if self._gateway is not None:
            self._host.sockets.detach_gateway(self._gateway, self._pusher)
        self._writer = None

    def _push(self, frame: list[Any]) -> None:
        if self._writer is not None:
            self._writer.write(PushFrame.pack(frame))

    def data_received(self, data: bytes) -> None:
        if self._caller is None:
            self._anonymous_bytes += len(data)
            if self._anonymous_bytes > HELLO_BYTES:  # a HELLO is tiny: refuse to buffer more
                log.warning("closing a connection to %s: no HELLO in its first bytes", self._label)
                assert self._transport is not None
                self._transport.abort()
                return
        try:
            self._unpacker.feed(data)
            for frame in self._unpacker:
                self._frame(frame)
        except Exception as exc:  # noqa: BLE001 - anything malformed ends the connection only
            log.warning("closing a connection to %s: %s", self._label, exc)
            assert self._transport is not None
            self._transport.abort()

    def _frame(self, raw: Any) -> None:
        caller = self._caller
        if caller is not None:
            numbered = read_event(raw, caller)  # the hot path: no record is made
            if numbered is not None:
                req_id, event = numbered
                self._deliver(event).add_done_callback(lambda f: self._reply(req_id, f))
                return
        frame = decode_frame(raw, HOST_READS)
        if caller is None:
            if not isinstance(frame, Hello):
                raise ValueError("the first frame must be HELLO")
            if not hmac.compare_digest(frame.token.encode(), self._token.encode()):
                raise ValueError("wrong token")
            self._caller, self._gateway = frame.caller, frame.gateway
            assert self._writer is not None
            self._writer.write(Welcome(self._label).encode())
            self._host.sockets.attach_gateway(self._gateway, self._pusher)
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
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count()
        self._seq = itertools.count()
        self._writer: _FrameWriter | None = None
        self._transport: asyncio.Transport | None = None
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

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
        return link

    async def call(self, event: Event) -> Any:
        """Send ``event`` and wait for its reply payload."""
        if self.closed or self._writer is None:
            raise HostUnavailable(f"the connection to {self.label} is closed", retryable=True)
        req_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        event.caller = self.caller
        event.seq = next(self._seq)
        self._writer.write(EventFrame.pack(req_id, event))
        try:
            return await future
        finally:
            self._pending.pop(req_id, None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._writer = _FrameWriter(self._transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._writer = None
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(f"{self.label} closed the connection"))
            self.welcomed.exception()  # read here so an unawaited failure is not logged
        if self._on_lost is not None:
            self._on_lost(self)
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
        elif isinstance(frame, PushFrame):
            if self._on_push is not None:
                self._on_push(frame.push)
        elif isinstance(frame, Welcome) and not self.welcomed.done():
            self.welcomed.set_result(None)
