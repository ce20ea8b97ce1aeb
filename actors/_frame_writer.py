"""The outgoing frames of one direct-stream connection, held here until the peer reads them.

Frames queued in one loop iteration leave in one write, so a busy link batches by itself.
While the peer does not read (the transport's buffer is past its high-water mark and it
paused us), frames wait in this writer rather than in the transport: there they are counted
against a bound (``host_link_bytes``), and an event's frame that has not left can be
withdrawn when its caller gives up, so a frozen host costs its callers a bounded amount of
memory that comes back when they leave. The chunks of streamed bodies count against the same
bound: a body's writer waits for room (:meth:`FrameWriter.has_room`,
:meth:`FrameWriter.wait_room`) instead of queueing past it, and the chunks of a body that is
ended with an error or cancelled before they left are withdrawn with it
(:meth:`FrameWriter.withdraw_chunks`).

An event's sequence number is its place in the stream, so it is stamped when its frame is
written, not when it is queued: a withdrawn event leaves no gap for the host to wait on.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any

from raydo.storage import codec

from ._errors import Overloaded
from ._frames import EventFrame
from .types import Event

WRITE_BATCH_BYTES = 256 * 1024
"""Frames joined into one write, at most (about): the transport may pause between writes."""


class QueuedEvent:
    """An event's frame in a writer: its request id and its packed fields, until written."""

    __slots__ = ("fields", "req_id")

    def __init__(self, req_id: int, fields: memoryview) -> None:
        self.req_id = req_id
        self.fields: memoryview | None = fields  # None once written or withdrawn

    @property
    def waiting(self) -> bool:
        """Whether the frame is still in the writer (not written, not withdrawn)."""
        return self.fields is not None


class QueuedChunk:
    """A streamed body's ``CHUNK`` frame in a writer, until written or withdrawn."""

    __slots__ = ("packed", "stream_id")

    def __init__(self, stream_id: int, packed: bytes) -> None:
        self.stream_id = stream_id
        self.packed: bytes | None = packed


class FrameWriter:
    """Packs frames, writes those of one loop iteration together, and holds them while the
    transport is paused (see the module's text). ``limit`` bounds the bytes held here and in
    the transport for events; None leaves them unbounded (a host's replies must go)."""

    def __init__(self, transport: asyncio.Transport, limit: int | None = None) -> None:
        self._transport = transport
        self._packer = codec.packer()
        self._queue: deque[bytes | QueuedEvent | QueuedChunk] = deque()
        self._room_waiters: list[asyncio.Event] = []
        self._queued_bytes = 0
        self._limit = limit
        self._paused = False
        self._flushing = False
        self._seq = itertools.count()
        self._loop = asyncio.get_running_loop()

    @property
    def held_bytes(self) -> int:
        """Bytes not yet taken by the peer: queued here, and in the transport's buffer."""
        return self._queued_bytes + self._transport.get_write_buffer_size()

    def write(self, frame: tuple[Any, ...]) -> None:
        """Queue an encoded frame (a record's ``encode()``); always accepted."""
        packed: bytes = self._packer.pack(frame)
        self._enqueue(packed, len(packed))

    def write_event(self, req_id: int, event: Event) -> QueuedEvent:
        """Queue an event's frame; :class:`Overloaded` at once when it would take the bytes
        held past ``limit`` (a frame always goes when nothing is held, however big)."""
        fields = EventFrame.pack_fields(self._packer, event)
        limit = self._limit
        if limit is not None and self.held_bytes and self.held_bytes + len(fields) > limit:
            raise Overloaded(
                f"{self.held_bytes} bytes wait for the host already; an event of"
                f" {len(fields)} would pass {limit} (limit host_link_bytes)"
            )
        queued = QueuedEvent(req_id, fields)
        self._enqueue(queued, len(fields))
        return queued

    def withdraw(self, queued: QueuedEvent) -> bool:
        """Take an event's frame back if it has not been written; whether it was."""
        fields = queued.fields
        if fields is None:
            return False
        queued.fields = None
        self._queued_bytes -= len(fields)
        self._made_room()
        return True

    # ---- streamed bodies' chunks ---------------------------------------------------------

    def send_chunk(self, stream_id: int, frame: tuple[Any, ...]) -> None:
        """Queue a body's ``CHUNK`` frame (its writer asked :meth:`has_room` first)."""
        packed: bytes = self._packer.pack(frame)
        self._enqueue(QueuedChunk(stream_id, packed), len(packed))

    def has_room(self, size: int) -> bool:
        """Whether ``size`` more bytes of chunks stay within ``limit`` (always, when nothing
        is held or there is no limit)."""
        limit = self._limit
        held = self.held_bytes
        return limit is None or not held or held + size <= limit

    def wait_room(self, woken: asyncio.Event) -> None:
        """Set ``woken`` the next time held bytes go down (written, withdrawn, dropped)."""
        self._room_waiters.append(woken)

    def withdraw_chunks(self, stream_id: int) -> int:
        """Take back the chunks of stream ``stream_id`` not written yet; their bytes."""
        taken = 0
        for item in self._queue:
            if (
                isinstance(item, QueuedChunk)
                and item.stream_id == stream_id
                and item.packed is not None
            ):
                taken += len(item.packed)
                item.packed = None
        if taken:
            self._queued_bytes -= taken
            self._made_room()
        return taken

    def _made_room(self) -> None:
        waiters, self._room_waiters = self._room_waiters, []
        for woken in waiters:
            woken.set()

    def pause(self) -> None:
        """The transport is full (its ``pause_writing``): hold frames here."""
        self._paused = True

    def resume(self) -> None:
        """The transport drained (its ``resume_writing``): write what is held."""
        self._paused = False
        if self._queue:
            self._flush()
        self._made_room()  # the transport's own buffer drained

    def _enqueue(self, item: bytes | QueuedEvent | QueuedChunk, size: int) -> None:
        self._queue.append(item)
        self._queued_bytes += size
        if not self._flushing and not self._paused:
            self._flushing = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        if self._transport.is_closing():  # nothing more will leave: let it all go
            for item in self._queue:
                if isinstance(item, QueuedEvent):
                    item.fields = None
                elif isinstance(item, QueuedChunk):
                    item.packed = None
            self._queue.clear()
            self._queued_bytes = 0
            self._made_room()
            return
        # Write until the transport pauses us (it does so inside write(), synchronously), a
        # batch at a time, so what is left when it does stays here, where it can be withdrawn.
        while self._queue and not self._paused:
            out: list[bytes | memoryview] = []
            size = 0
            while self._queue and size < WRITE_BATCH_BYTES:
                item = self._queue.popleft()
                if isinstance(item, bytes):
                    out.append(item)
                    size += len(item)
                elif isinstance(item, QueuedChunk):
                    if item.packed is not None:
                        out.append(item.packed)
                        size += len(item.packed)
                        item.packed = None
                elif item.fields is not None:
                    out.append(EventFrame.pack_head(self._packer, item.req_id, next(self._seq)))
                    out.append(item.fields)
                    size += len(item.fields)
                    item.fields = None
            self._queued_bytes -= size
            if out:
                self._transport.write(out[0] if len(out) == 1 else b"".join(out))
            if size and self._room_waiters:
                self._made_room()
