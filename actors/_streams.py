"""Bodies that stream through objects: the two ends of one body, and what travels with an event.

A streamed body has a writer (a :class:`BodySink`) and a reader (a :class:`BodySource`), with
at most ``stream_window_bytes`` of it between them: a writer past that waits for the reader
(backpressure, end to end). Either side may stop it: the writer ends it (cleanly, or with an
error the reader then raises), the reader cancels it (the writer's next ``write`` raises).
Waiting for the other side longer than ``stream_idle_seconds`` is a breach of that limit on
both sides, and so is a body past ``stream_bytes``.

Two transports carry the same ends (one interface, two transports): in one process a
:class:`Pipe` is both ends; between processes the reader is a :class:`Pipe` fed by frames and
the writer sends frames (:mod:`actors._stream_table`), the reader granting credit as it takes
chunks.

A FETCH event that may stream carries its streams beside its payload (``Event.streams``,
never encoded): the caller's :class:`CallerStreams` (where to write the request body, where
the reply body appears), which the placement turns into the host's :class:`HostStreams` (the
request body to read, how to open the reply body).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from raydo.storage.limits import LimitExceeded, Limits

from ._errors import RaydoError, RemoteLimitExceeded, StreamBroken

KiB = 1024

BUFFERED_BODY_BYTES = 256 * KiB
"""A request body declared at most this long travels inside its event, as before streams;
a longer one, or one of unknown length (chunked), streams."""

BODY_ALLOWANCE = "raydo.body_allowance"
"""The ASGI scope key of a request's :class:`BodyAllowance` (set by the gateway)."""


class BodySource(Protocol):
    """The reading end of a streamed body."""

    async def read(self) -> bytes | None:
        """The next chunk, or None at the end; raises the error the stream ended with."""
        ...

    def cancel(self, error: RaydoError) -> None:
        """Take no more: the writer's next ``write`` raises ``error``."""
        ...


class BodySink(Protocol):
    """The writing end of a streamed body."""

    async def write(self, data: bytes) -> None:
        """Send ``data`` once the window has room; raises what the reader cancelled with."""
        ...

    def end(self, error: RaydoError | None = None) -> None:
        """The body is complete (None) or broken (the reader raises ``error``)."""
        ...


class HostStreams(Protocol):
    """The streams of one FETCH event, seen from the host."""

    request: BodySource | None
    """The request body, when it streams (its record's ``body`` is None)."""

    def open_reply(self) -> BodySink:
        """Open the reply body towards the caller (before the head leaves)."""
        ...


class StreamState(Enum):
    """A pipe's life; :meth:`to` refuses a step the table does not allow."""

    OPEN = "open"
    ENDED = "ended"  # the writer finished; what is buffered may still be read
    FAILED = "failed"  # the writer (or the limits) broke it; the reader gets the error
    CANCELLED = "cancelled"  # the reader took no more; the writer gets the error

    def to(self, target: StreamState) -> StreamState:
        if target not in _STEPS[self]:
            raise RuntimeError(f"a stream cannot go from {self.value} to {target.value}")
        return target


_STEPS: dict[StreamState, frozenset[StreamState]] = {
    StreamState.OPEN: frozenset({StreamState.ENDED, StreamState.FAILED, StreamState.CANCELLED}),
    StreamState.ENDED: frozenset({StreamState.CANCELLED}),  # read no further than it had
    StreamState.FAILED: frozenset(),
    StreamState.CANCELLED: frozenset(),
}


class WindowExceeded(Exception):
    """A peer sent more than the credit it was granted."""


class Pipe:
    """One streamed body held between its writer and its reader, at most ``window`` bytes.

    In one process it is both ends (:meth:`write` waits for room); at the receiving end of a
    connection the frames :meth:`feed` it, ``on_consumed`` grants credit as chunks are read
    and ``on_cancel`` tells the sender that the reader stopped.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        on_consumed: Callable[[int], None] | None = None,
        on_cancel: Callable[[RaydoError], None] | None = None,
    ) -> None:
        self.state = StreamState.OPEN
        self._window = limits.stream_window_bytes
        self._idle = limits.stream_idle_seconds
        self._most = limits.stream_bytes
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._ungranted = 0  # read but not yet granted back to a sender
        self.total = 0
        self._error: RaydoError | None = None
        self._on_consumed = on_consumed
        self._on_cancel = on_cancel
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    @property
    def done(self) -> bool:
        """Nothing more will be written."""
        return self.state is not StreamState.OPEN

    # ---- the writing end ----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take a chunk that arrived; :class:`WindowExceeded` past the credit granted."""
        if self.state is not StreamState.OPEN:
            return
        if self._buffered + self._ungranted + len(data) > self._window:
            raise WindowExceeded(
                f"{self._buffered + self._ungranted + len(data)} bytes in flight, over the"
                f" window of {self._window}"
            )
        self._take(data)

    def _take(self, data: bytes) -> None:
        self.total += len(data)
        if self.total > self._most:
            breach = _too_long(self._most)
            self._fail(breach)
            self._cancelled_by_us(breach)
            return
        self._chunks.append(data)
        self._buffered += len(data)
        self._readable.set()
        if self._buffered >= self._window:
            self._writable.clear()

    async def write(self, data: bytes) -> None:
        if not data:
            return
        while self.state is StreamState.OPEN and not self._writable.is_set():
            await wait_within(self._idle, self._writable.wait(), "room in the body's window")
        if self.state is StreamState.CANCELLED:
            assert self._error is not None
            raise self._error
        if self.state is not StreamState.OPEN:
            raise StreamBroken("the body was already ended")
        self._take(bytes(data))
        if self.state is not StreamState.OPEN:  # that chunk passed stream_bytes
            assert self._error is not None
            raise self._error

    def end(self, error: RaydoError | None = None) -> None:
        if self.state is not StreamState.OPEN:
            return
        if error is None:
            self.state = self.state.to(StreamState.ENDED)
            self._readable.set()
        else:
            self._fail(error)

    def _fail(self, error: RaydoError) -> None:
        self.state = self.state.to(StreamState.FAILED)
        self._error = error
        self._drop()

    # ---- the reading end ----------------------------------------------------------------

    async def read(self) -> bytes | None:
        while not self._chunks:
            if self.state is StreamState.ENDED:
                return None
            if self._error is not None:
                raise self._error
            self._readable.clear()
            try:
                await wait_within(self._idle, self._readable.wait(), "the next chunk of the body")
            except RemoteLimitExceeded as exc:
                self.cancel(exc)
                raise
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._buffered < self._window:
            self._writable.set()
        if self._on_consumed is not None:
            self._ungranted += len(data)
            if self._ungranted * 2 >= self._window:  # credit in halves: few frames, no stall
                granted, self._ungranted = self._ungranted, 0
                self._on_consumed(granted)
        return data

    def cancel(self, error: RaydoError) -> None:
        if self.state in (StreamState.FAILED, StreamState.CANCELLED):
            return
        self.state = self.state.to(StreamState.CANCELLED)
        self._error = error
        self._drop()
        self._cancelled_by_us(error)

    def _cancelled_by_us(self, error: RaydoError) -> None:
        callback, self._on_cancel = self._on_cancel, None
        if callback is not None:
            callback(error)

    def _drop(self) -> None:
        self._chunks.clear()
        self._buffered = 0
        self._readable.set()
        self._writable.set()


def _too_long(most: int) -> RemoteLimitExceeded:
    return RemoteLimitExceeded(
        "stream_bytes", f"the streamed body is over {most} bytes (limit stream_bytes)"
    )


async def wait_within(seconds: float, waiting: object, what: str) -> None:
    try:
        await asyncio.wait_for(waiting, seconds)  # type: ignore[arg-type]
    except TimeoutError:
        raise RemoteLimitExceeded(
            "stream_idle_seconds",
            f"waited {seconds} s for {what} (limit stream_idle_seconds)",
        ) from None


def stream_error(exc: BaseException) -> RaydoError:
    """What the other side of a stream is told when this side stops it with ``exc``."""
    if isinstance(exc, RaydoError):
        return exc
    if isinstance(exc, LimitExceeded):
        return RemoteLimitExceeded(exc.limit, str(exc))
    if isinstance(exc, asyncio.CancelledError):
        return StreamBroken("the other side of the stream was cancelled")
    return StreamBroken(f"the other side of the stream failed: {type(exc).__name__}: {exc}")


async def committed(commit: Callable[[], asyncio.Future[None] | None]) -> None:
    """Commit what the turn wrote so far and wait until it is durable: the output gate before
    a streamed reply's head and each of its chunks."""
    durable = commit()
    if durable is not None:
        await durable


# ---- what travels with a FETCH event --------------------------------------------------------


class CallerStreams:
    """The caller's side of one FETCH event's streams: the transport gives it the sink for the
    request body (when it streams) as it sends the event, and the source of the reply body
    (when the object streams it) before the reply's head arrives."""

    __slots__ = ("reply", "request_sink")

    def __init__(self, sends_body: bool) -> None:
        self.request_sink: asyncio.Future[BodySink] | None = (
            asyncio.get_running_loop().create_future() if sends_body else None
        )
        self.reply: BodySource | None = None

    def in_process(self, limits: Limits) -> InProcessStreams:
        """The host's side, for a host in this process: pipes join the two."""
        return InProcessStreams(self, limits)


class InProcessStreams:
    """:class:`HostStreams` for a host in the caller's process: each body is one :class:`Pipe`."""

    __slots__ = ("_caller", "_limits", "request")

    def __init__(self, caller: CallerStreams, limits: Limits) -> None:
        self._caller = caller
        self._limits = limits
        self.request: BodySource | None = None
        sink = caller.request_sink
        if sink is not None and not sink.done():
            pipe = Pipe(limits)
            sink.set_result(pipe)
            self.request = pipe

    def open_reply(self) -> BodySink:
        pipe = Pipe(self._limits)
        self._caller.reply = pipe
        return pipe


def in_process(streams: object, limits: Limits) -> object:
    """The host's side of an event's streams when the host runs in this process (None stays
    None)."""
    return streams.in_process(limits) if isinstance(streams, CallerStreams) else streams


class BodyAllowance:
    """How much of one request's body the gateway lets the app read: ``request_bytes``, read
    whole or streamed by the app itself, until a stub streams the body to an object
    (:meth:`stream`); from then on the stub counts it against ``stream_bytes``."""

    __slots__ = ("buffered", "streamed")

    def __init__(self, buffered: int) -> None:
        self.buffered = buffered
        self.streamed = False

    def stream(self) -> None:
        self.streamed = True
