"""The streamed bodies of one direct-stream connection, both ways (see :mod:`actors._frames`).

Each end of a connection keeps one :class:`StreamTable`: the bodies it reads (a
:class:`~actors._streams.Pipe` each, fed by ``CHUNK`` frames and granting
``CREDIT`` as its reader takes them) and the bodies it writes (a :class:`StreamOut`
each, which sends chunks only as far as its credit goes). Every stream has its own window, so
one slow reader holds back its own body and nothing else on the connection.

Chunks go out through the connection's :class:`ChunkLink` when it has one: the writer of a
body then waits for room on the connection (``host_link_bytes`` on a caller's side, for a
host that does not read) as it waits for credit, and a body ended with an error or
cancelled takes back its chunks that have not left.

A peer that breaks a stream's rules (a chunk for a stream that was never opened or has
ended, more bytes than its credit, credit past the window) costs that stream only: it is
ended with an error naming the breach on both sides, the breach is logged (rate-limited), and
the connection with its other events and streams carries on. Frames that arrive after this
end cancelled a stream (chunks, credit, an end already on their way) are dropped quietly.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from raydo.storage.limits import Limits

from ._errors import RaydoError, StreamBroken, error_from_wire
from ._frames import (
    StreamCancel,
    StreamChunk,
    StreamCredit,
    StreamEnd,
    StreamFrame,
    StreamOpen,
)
from ._streams import Pipe, StreamState, WindowExceeded, wait_within
from ._throttled_log import ThrottledWarning

log = logging.getLogger("raydo.wire")

MAX_CHUNK_BYTES = 1 << 20
"""The most one ``CHUNK`` frame carries (a longer write goes in several)."""

REMEMBERED_STREAMS = 4096
"""Finished streams a table remembers, to tell late frames from hostile ones."""

_breaches = ThrottledWarning(log)
"""Streams ended because a peer broke their rules (every connection of a process)."""

Send = Callable[[tuple[Any, ...]], None]


class ChunkLink(Protocol):
    """Where a connection's chunks go: bounded, and taken back for a body that failed (a
    :class:`~actors._frame_writer.FrameWriter`, or what finds the connection's)."""

    def send_chunk(self, stream_id: int, frame: tuple[Any, ...]) -> None: ...
    def has_room(self, size: int) -> bool: ...
    def wait_room(self, woken: asyncio.Event) -> None: ...
    def withdraw_chunks(self, stream_id: int) -> int: ...


class StreamOut:
    """The writing end of one body over a connection (a :class:`~actors._streams.BodySink`)."""

    def __init__(self, table: StreamTable, stream_id: int, limits: Limits) -> None:
        self.state = StreamState.OPEN
        self.stream_id = stream_id
        self._table = table
        self._window = limits.stream_window_bytes
        self._idle = limits.stream_idle_seconds
        self._credit = self._window
        self._room = asyncio.Event()
        self._room.set()
        self._error: RaydoError | None = None

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.state is StreamState.CANCELLED:
                assert self._error is not None
                raise self._error
            if self.state is not StreamState.OPEN:
                raise StreamBroken("the body was already ended")
            if self._credit <= 0:
                self._room.clear()
                await wait_within(self._idle, self._room.wait(), "the reader to take more")
                continue
            size = min(self._credit, len(view), MAX_CHUNK_BYTES)
            link = self._table.link
            if link is None:
                self._table.send(StreamChunk.pack(self.stream_id, bytes(view[:size])))
            elif not link.has_room(size):
                self._room.clear()
                link.wait_room(self._room)
                await wait_within(
                    self._idle, self._room.wait(), "room on the connection (host_link_bytes)"
                )
                continue
            else:
                link.send_chunk(
                    self.stream_id, StreamChunk.pack(self.stream_id, bytes(view[:size]))
                )
            self._credit -= size
            view = view[size:]

    def end(self, error: RaydoError | None = None) -> None:
        if self.state is not StreamState.OPEN:
            return
        self.state = self.state.to(StreamState.ENDED if error is None else StreamState.FAILED)
        if error is not None:
            self._table.withdraw_chunks(self.stream_id)  # a failed body's rest is not read
        self._table.send(
            StreamEnd(self.stream_id, None if error is None else error.to_wire()).encode()
        )
        self._table.forget_out(self.stream_id)

    def grant(self, credit: int) -> None:
        """The reader took ``credit`` bytes: send that much more."""
        self._credit += credit
        if self._credit > self._window:
            breach = StreamBroken(
                f"the reader granted credit past the window of {self._window} bytes"
                " (credit overflow)"
            )
            self.cancelled(breach)
            self._table.breach(self.stream_id, breach)
            self._table.send(StreamEnd(self.stream_id, breach.to_wire()).encode())
            return
        self._room.set()

    def cancelled(self, error: RaydoError) -> None:
        """The reader takes no more: the next ``write`` raises ``error``."""
        if self.state in (StreamState.OPEN, StreamState.ENDED):
            self.state = self.state.to(StreamState.CANCELLED)
            self._error = error
            self._table.withdraw_chunks(self.stream_id)  # the reader drops them anyway
        self._room.set()
        self._table.forget_out(self.stream_id)


class StreamTable:
    """The streams of one connection; ``send`` writes a frame to the peer."""

    def __init__(
        self, send: Send, limits: Limits, label: str, link: ChunkLink | None = None
    ) -> None:
        self.send = send
        self.link = link
        """Where chunks go, bounded and withdrawable (None: through ``send``, unbounded)."""
        self._limits = limits
        self._label = label
        self._in: dict[int, Pipe] = {}
        self._unclaimed: set[int] = set()
        self._out: dict[int, StreamOut] = {}
        self._finished: OrderedDict[int, str] = OrderedDict()  # inbound id: "ended"/"cancelled"
        self._closed = False

    @property
    def open_streams(self) -> int:
        """Bodies under way on this connection, both ways."""
        return len(self._in) + len(self._out)

    # ---- opening ------------------------------------------------------------------------

    def open_out(self, stream_id: int) -> StreamOut:
        """Start writing a body to the peer under ``stream_id`` (its ``OPEN`` now)."""
        stream = StreamOut(self, stream_id, self._limits)
        if self._closed:
            stream.cancelled(StreamBroken(f"the connection to {self._label} is closed"))
            return stream
        self._out[stream_id] = stream
        self.send(StreamOpen(stream_id).encode())
        return stream

    def opened(self, stream_id: int) -> Pipe | None:
        """The peer opened a body under ``stream_id``: the pipe its chunks fill (None, and
        logged, when a stream of that id is under way already)."""
        if stream_id in self._in:
            self.breach(stream_id, StreamBroken(f"stream {stream_id} was opened twice"))
            return None
        self._finished.pop(stream_id, None)
        pipe = Pipe(
            self._limits,
            on_consumed=lambda credit: self._grant(stream_id, credit),
            on_cancel=lambda error: self._cancel_in(stream_id, error),
        )
        self._in[stream_id] = pipe
        self._unclaimed.add(stream_id)
        return pipe

    def claim(self, stream_id: int) -> Pipe | None:
        """The pipe of a body the peer opened for an event, once (None if there is none)."""
        if stream_id not in self._unclaimed:
            return None
        self._unclaimed.discard(stream_id)
        return self._in.get(stream_id)

    def refuse(self, stream_id: int, error: RaydoError) -> None:
        """Cancel a body the peer opened that nobody will read."""
        pipe = self.opened(stream_id)
        if pipe is not None:
            pipe.cancel(error)

    # ---- frames from the peer -----------------------------------------------------------

    def received(self, frame: StreamFrame) -> None:
        """Apply one stream frame from the peer (never raises for a broken rule: see the
        module's text)."""
        if isinstance(frame, StreamChunk):
            self._chunk(frame.stream_id, frame.data)
        elif isinstance(frame, StreamCredit):
            out = self._out.get(frame.stream_id)
            if out is not None:  # else it ended: credit already on its way
                out.grant(frame.credit)
        elif isinstance(frame, StreamCancel):
            out = self._out.get(frame.stream_id)
            if out is not None:
                out.cancelled(error_from_wire(frame.error))
        elif isinstance(frame, StreamEnd):
            self._end(frame.stream_id, frame.error)
        else:
            self.opened(frame.stream_id)

    def _chunk(self, stream_id: int, data: bytes) -> None:
        pipe = self._in.get(stream_id)
        if pipe is None:
            self._stray(stream_id, "a chunk")
            return
        try:
            pipe.feed(data)
        except WindowExceeded as exc:
            breach = StreamBroken(
                f"stream {stream_id}: the writer sent past its credit (credit overflow: {exc})"
            )
            self.breach(stream_id, breach)
            pipe.cancel(breach)

    def _end(self, stream_id: int, error: list[Any] | None) -> None:
        pipe = self._in.pop(stream_id, None)
        if pipe is None:
            self._stray(stream_id, "an end")
            return
        self._unclaimed.discard(stream_id)
        self._remember(stream_id, "ended")
        pipe.end(None if error is None else error_from_wire(error))

    def _stray(self, stream_id: int, what: str) -> None:
        finished = self._finished.get(stream_id)
        if finished == "cancelled":
            return  # sent before our cancel reached the writer
        if finished == "ended":
            self.breach(stream_id, StreamBroken(f"{what} after the end of stream {stream_id}"))
            return
        breach = StreamBroken(f"{what} for unknown stream {stream_id}")
        self.breach(stream_id, breach)
        self._remember(stream_id, "cancelled")
        self.send(StreamCancel(stream_id, breach.to_wire()).encode())

    def breach(self, stream_id: int, error: RaydoError) -> None:
        """Log a stream ended for a broken rule (rate-limited)."""
        _breaches.warn("a stream on the connection to %s broke its rules: %s", self._label, error)

    # ---- our readers and writers --------------------------------------------------------

    def _grant(self, stream_id: int, credit: int) -> None:
        if stream_id in self._in and not self._closed:
            self.send(StreamCredit(stream_id, credit).encode())

    def _cancel_in(self, stream_id: int, error: RaydoError) -> None:
        if self._in.pop(stream_id, None) is None:
            return
        self._unclaimed.discard(stream_id)
        self._remember(stream_id, "cancelled")
        if not self._closed:
            self.send(StreamCancel(stream_id, error.to_wire()).encode())

    def withdraw_chunks(self, stream_id: int) -> None:
        if self.link is not None:
            self.link.withdraw_chunks(stream_id)

    def forget_out(self, stream_id: int) -> None:
        self._out.pop(stream_id, None)

    def _remember(self, stream_id: int, how: str) -> None:
        self._finished[stream_id] = how
        while len(self._finished) > REMEMBERED_STREAMS:
            self._finished.popitem(last=False)

    def close(self, error: RaydoError) -> None:
        """The connection is gone: every reader and writer here gets ``error``."""
        self._closed = True
        inbound, self._in = self._in, {}
        outbound, self._out = self._out, {}
        self._unclaimed.clear()
        for pipe in inbound.values():
            pipe.end(error)
        for out in outbound.values():
            out.cancelled(error)


class WireHostStreams:
    """:class:`~actors._streams.HostStreams` of one FETCH event that came over a connection:
    its request body (if the caller opened one under the event's ``req_id``), and its reply
    body, opened under the same id."""

    __slots__ = ("_req_id", "_table", "request")

    def __init__(self, table: StreamTable, req_id: int) -> None:
        self._table = table
        self._req_id = req_id
        self.request: Pipe | None = table.claim(req_id)

    def open_reply(self) -> StreamOut:
        return self._table.open_out(self._req_id)
