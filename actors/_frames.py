"""The frames of the direct event stream between a caller process and a host.

A frame is a msgpack array: its kind first, then the fields of its record below, in order.
A caller sends ``HELLO`` first (and ``SOCKETS`` after a reconnect), then ``EVENT`` frames;
the host answers ``WELCOME``, then one ``OK`` or ``FAIL`` per event, and sends ``PUSH``
frames (a WebSocket push, see :mod:`actors._payloads`) whenever an object sends. Bodies that
stream (see :mod:`actors._streams`) travel in the frames ``OPEN`` to ``CANCEL``, either way: a
stream's id is the ``req_id`` of its event (a request body goes to the host, a reply body
comes back), its ``OPEN`` goes before its event (or before the reply's head), and its chunks
only as far as the reader's credit allows (a window of ``stream_window_bytes``, topped up
with ``CREDIT`` frames as the reader takes them).

======= == ====== ============ ======
frame   no to     record       fields
======= == ====== ============ ======
HELLO   0  host   Hello        token, caller, gateway
EVENT   1  host   EventFrame   req_id, seq, binding, object_hex, name, chain, kind, payload, trace
WELCOME 2  caller Welcome      host_label
OK      3  caller Ok           req_id, reply
FAIL    4  caller Fail         req_id, error
PUSH    5  caller PushFrame    push
SOCKETS 6  host   Sockets      sockets
OPEN    7  either StreamOpen   stream_id
CHUNK   8  either StreamChunk  stream_id, data
END     9  either StreamEnd    stream_id, error
CREDIT  10 either StreamCredit stream_id, credit
CANCEL  11 either StreamCancel stream_id, error
======= == ====== ============ ======

``trace`` is None unless the caller traces (then a ``traceparent`` map); ``error`` is a
:class:`actors.RaydoError`'s own wire form (``to_wire``); ``sockets`` lists
``[object_hex, sid]`` of every socket the caller's gateway holds for that host's objects.
A stream's ``error`` (None for a clean end) is an error's wire form too; ``credit`` is a
positive number of bytes.

Records are plain tuples, so encoding one costs what encoding a list does; :func:`decode_frame`
is the one place a received frame is taken apart, and it refuses any frame of the wrong shape
with ``ValueError`` (a connection ends on one). The frames of every event (``EVENT`` out,
``OK`` or ``FAIL`` back) also have ``pack``/:func:`read_event` forms that skip making the
record: building a NamedTuple costs several times what the tuple itself does.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any, NamedTuple, TypeVar

from .types import Event, EventKind


class FrameKind(IntEnum):
    HELLO = 0
    EVENT = 1
    WELCOME = 2
    OK = 3
    FAIL = 4
    PUSH = 5
    SOCKETS = 6
    OPEN = 7
    CHUNK = 8
    END = 9
    CREDIT = 10
    CANCEL = 11


# Plain ints: what goes first in an encoded frame (an IntEnum would pack the same, slower).
(
    _HELLO,
    _EVENT,
    _WELCOME,
    _OK,
    _FAIL,
    _PUSH,
    _SOCKETS,
    _STREAM_OPEN,
    _STREAM_CHUNK,
    _STREAM_END,
    _STREAM_CREDIT,
    _STREAM_CANCEL,
) = (int(kind) for kind in FrameKind)
_KINDS = tuple(EventKind)
_EVENT_ARRAY = b"\x9a"  # msgpack's header of an array of ten: the kind and the nine fields

R = TypeVar("R", bound=tuple[Any, ...])


def _record(cls: type[R], fields: tuple[Any, ...]) -> R:
    """``cls(*fields)`` at a third of the cost (the fields are checked already)."""
    return tuple.__new__(cls, fields)


class Hello(NamedTuple):
    """The caller proves it knows the host's token and says who it is."""

    token: str
    caller: str
    gateway: str

    def encode(self) -> tuple[Any, ...]:
        return (_HELLO, *self)

    @classmethod
    def decode(cls, raw: list[Any]) -> Hello:
        _fields(raw, 3, "HELLO")
        _, token, caller, gateway = raw
        if not (isinstance(token, str) and isinstance(caller, str) and isinstance(gateway, str)):
            raise ValueError("malformed HELLO frame")
        return _record(cls, (token, caller, gateway))


class EventFrame(NamedTuple):
    """One :class:`actors.types.Event` on its way to a host, numbered for its reply."""

    req_id: int
    seq: int
    binding: str
    object_hex: str
    name: str | None
    chain: str
    kind: int
    payload: Any
    trace: dict[str, Any] | None

    @staticmethod
    def pack(req_id: int, event: Event) -> tuple[Any, ...]:
        """``EventFrame.of(req_id, event).encode()``, without making the record."""
        return (
            _EVENT,
            req_id,
            event.seq,
            event.binding,
            event.object_hex,
            event.name,
            event.chain,
            int(event.kind),
            event.payload,
            event.trace,
        )

    @staticmethod
    def pack_fields(packer: Any, event: Event) -> memoryview:
        """The packed fields after ``seq`` (what :meth:`pack_head` goes before): a writer
        packs an event when it is queued and numbers it only when it is written."""
        packed = packer.pack(
            (
                event.binding,
                event.object_hex,
                event.name,
                event.chain,
                int(event.kind),
                event.payload,
                event.trace,
            )
        )
        return memoryview(packed)[1:]  # without the array's one-byte header (seven fields)

    @staticmethod
    def pack_head(packer: Any, req_id: int, seq: int) -> bytes:
        """The start of an ``EVENT`` frame, up to ``seq``: ``pack_head(...) + pack_fields(...)``
        is ``packer.pack(EventFrame.pack(req_id, event))`` for an event numbered ``seq``."""
        head: bytes = packer.pack(_EVENT) + packer.pack(req_id) + packer.pack(seq)
        return _EVENT_ARRAY + head

    @classmethod
    def of(cls, req_id: int, event: Event) -> EventFrame:
        return cls(
            req_id,
            event.seq,
            event.binding,
            event.object_hex,
            event.name,
            event.chain,
            int(event.kind),
            event.payload,
            event.trace,
        )

    def encode(self) -> tuple[Any, ...]:
        return (_EVENT, *self)

    @classmethod
    def decode(cls, raw: list[Any]) -> EventFrame:
        _fields(raw, 9, "EVENT")
        _check_event(raw)
        return _record(cls, tuple(raw[1:]))

    def event(self, caller: str) -> Event:
        """The event for the host; ``ValueError`` for an unknown event kind."""
        return Event(
            self.binding,
            self.object_hex,
            self.name,
            self.chain,
            EventKind(self.kind),
            self.payload,
            caller,
            self.seq,
            self.trace,
        )


def _check_event(raw: list[Any]) -> None:
    _, req_id, seq, binding, object_hex, name, chain, kind, _payload, trace = raw
    if not (
        isinstance(req_id, int)
        and isinstance(seq, int)
        and isinstance(binding, str)
        and isinstance(object_hex, str)
        and isinstance(chain, str)
        and isinstance(kind, int)
        and (name is None or isinstance(name, str))
        and (trace is None or isinstance(trace, dict))
    ):
        raise ValueError("malformed EVENT frame")


def read_event(raw: Any, caller: str) -> tuple[int, Event] | None:
    """The request id and event of an ``EVENT`` frame from ``caller`` (what
    ``decode_frame(raw, HOST_READS).event(caller)`` gives, without making the record); None
    for a frame of another kind. ``ValueError`` for a malformed one."""
    if type(raw) is not list or not raw or raw[0] != _EVENT:
        return None
    _fields(raw, 9, "EVENT")
    _check_event(raw)
    _, req_id, seq, binding, object_hex, name, chain, kind, payload, trace = raw
    if not 0 <= kind < len(_KINDS):
        raise ValueError(f"unknown event kind {kind!r}")
    return req_id, Event(
        binding, object_hex, name, chain, _KINDS[kind], payload, caller, seq, trace
    )


class Welcome(NamedTuple):
    """The host took the HELLO; events may follow."""

    host_label: str

    def encode(self) -> tuple[Any, ...]:
        return (_WELCOME, *self)

    @classmethod
    def decode(cls, raw: list[Any]) -> Welcome:
        _fields(raw, 1, "WELCOME")
        return _record(cls, (str(raw[1]),))


class Ok(NamedTuple):
    """An event's reply payload."""

    req_id: int
    reply: Any

    def encode(self) -> tuple[Any, ...]:
        return (_OK, *self)

    @staticmethod
    def pack(req_id: int, reply: Any) -> tuple[Any, ...]:
        """``Ok(req_id, reply).encode()``, without making the record."""
        return (_OK, req_id, reply)

    @classmethod
    def decode(cls, raw: list[Any]) -> Ok:
        if len(raw) != 3 or type(raw[1]) is not int:
            raise ValueError("malformed OK frame")
        return _record(cls, (raw[1], raw[2]))


class Fail(NamedTuple):
    """An event's error, as :meth:`actors.RaydoError.to_wire` wrote it."""

    req_id: int
    error: list[Any]

    def encode(self) -> tuple[Any, ...]:
        return (_FAIL, *self)

    @staticmethod
    def pack(req_id: int, error: list[Any]) -> tuple[Any, ...]:
        """``Fail(req_id, error).encode()``, without making the record."""
        return (_FAIL, req_id, error)

    @classmethod
    def decode(cls, raw: list[Any]) -> Fail:
        if len(raw) != 3 or type(raw[1]) is not int or not isinstance(raw[2], list):
            raise ValueError("malformed FAIL frame")
        return _record(cls, (raw[1], raw[2]))


class PushFrame(NamedTuple):
    """A WebSocket push for the caller's gateway (one of :mod:`actors._payloads`' pushes)."""

    push: list[Any]

    def encode(self) -> tuple[Any, ...]:
        return (_PUSH, *self)

    @staticmethod
    def pack(push: list[Any]) -> tuple[Any, ...]:
        """``PushFrame(push).encode()``, without making the record."""
        return (_PUSH, push)

    @classmethod
    def decode(cls, raw: list[Any]) -> PushFrame:
        _fields(raw, 1, "PUSH")
        if not isinstance(raw[1], list):
            raise ValueError("malformed PUSH frame")
        return _record(cls, (raw[1],))


class Sockets(NamedTuple):
    """The sockets of the host's objects that the caller's gateway holds."""

    sockets: list[list[str]]

    def encode(self) -> tuple[Any, ...]:
        return (_SOCKETS, *self)

    @classmethod
    def decode(cls, raw: list[Any]) -> Sockets:
        _fields(raw, 1, "SOCKETS")
        held = raw[1]
        if not isinstance(held, list) or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in held
        ):
            raise ValueError("malformed SOCKETS frame")
        return _record(cls, ([[str(object_hex), str(sid)] for object_hex, sid in held],))


def _stream_id(raw: list[Any], count: int, name: str) -> int:
    _fields(raw, count, name)
    stream_id = raw[1]
    if type(stream_id) is not int or stream_id < 0:
        raise ValueError(f"malformed {name} frame: a stream id is a number")
    return stream_id


def _error(raw: Any, name: str) -> list[Any]:
    if not isinstance(raw, list) or len(raw) != 4:
        raise ValueError(f"malformed {name} frame: its error is not an error's wire form")
    return raw


class StreamOpen(NamedTuple):
    """A body streams under ``stream_id`` (its event's ``req_id``); its frames follow."""

    stream_id: int

    def encode(self) -> tuple[Any, ...]:
        return (_STREAM_OPEN, *self)

    @classmethod
    def decode(cls, raw: list[Any]) -> StreamOpen:
        return _record(cls, (_stream_id(raw, 1, "OPEN"),))


class StreamChunk(NamedTuple):
    """The next bytes of a streamed body."""

    stream_id: int
    data: bytes

    @staticmethod
    def pack(stream_id: int, data: bytes) -> tuple[Any, ...]:
        return (_STREAM_CHUNK, stream_id, data)

    def encode(self) -> tuple[Any, ...]:
        return (_STREAM_CHUNK, *self)

    @classmethod
    def decode(cls, raw: list[Any]) -> StreamChunk:
        stream_id = _stream_id(raw, 2, "CHUNK")
        if not isinstance(raw[2], bytes):
            raise ValueError("malformed CHUNK frame: its data is not bytes")
        return _record(cls, (stream_id, raw[2]))


class StreamEnd(NamedTuple):
    """The writer ended the body: cleanly (``error`` None) or broken."""

    stream_id: int
    error: list[Any] | None

    def encode(self) -> tuple[Any, ...]:
        return (_STREAM_END, *self)

    @classmethod
    def decode(cls, raw: list[Any]) -> StreamEnd:
        stream_id = _stream_id(raw, 2, "END")
        error = None if raw[2] is None else _error(raw[2], "END")
        return _record(cls, (stream_id, error))


class StreamCredit(NamedTuple):
    """The reader took ``credit`` more bytes: the writer may send that much more."""

    stream_id: int
    credit: int

    def encode(self) -> tuple[Any, ...]:
        return (_STREAM_CREDIT, *self)

    @classmethod
    def decode(cls, raw: list[Any]) -> StreamCredit:
        stream_id = _stream_id(raw, 2, "CREDIT")
        if type(raw[2]) is not int or raw[2] <= 0:
            raise ValueError("malformed CREDIT frame: credit is a positive number")
        return _record(cls, (stream_id, raw[2]))


class StreamCancel(NamedTuple):
    """The reader takes no more of the body, for the reason ``error`` says."""

    stream_id: int
    error: list[Any]

    def encode(self) -> tuple[Any, ...]:
        return (_STREAM_CANCEL, *self)

    @classmethod
    def decode(cls, raw: list[Any]) -> StreamCancel:
        stream_id = _stream_id(raw, 2, "CANCEL")
        return _record(cls, (stream_id, _error(raw[2], "CANCEL")))


StreamFrame = StreamOpen | StreamChunk | StreamEnd | StreamCredit | StreamCancel

Frame = Hello | EventFrame | Welcome | Ok | Fail | PushFrame | Sockets | StreamFrame

RECORDS: dict[FrameKind, type[Frame]] = {
    FrameKind.HELLO: Hello,
    FrameKind.EVENT: EventFrame,
    FrameKind.WELCOME: Welcome,
    FrameKind.OK: Ok,
    FrameKind.FAIL: Fail,
    FrameKind.PUSH: PushFrame,
    FrameKind.SOCKETS: Sockets,
    FrameKind.OPEN: StreamOpen,
    FrameKind.CHUNK: StreamChunk,
    FrameKind.END: StreamEnd,
    FrameKind.CREDIT: StreamCredit,
    FrameKind.CANCEL: StreamCancel,
}
"""The record of each frame kind."""

EITHER_WAY = frozenset(
    {
        FrameKind.OPEN,
        FrameKind.CHUNK,
        FrameKind.END,
        FrameKind.CREDIT,
        FrameKind.CANCEL,
    }
)
"""The frames of streamed bodies, which both ends read."""
TO_HOST = frozenset({FrameKind.HELLO, FrameKind.EVENT, FrameKind.SOCKETS}) | EITHER_WAY
"""The frames a host reads."""
TO_CALLER = (frozenset(FrameKind) - TO_HOST) | EITHER_WAY
"""The frames a caller reads."""

Decoders = dict[int, Callable[[list[Any]], Frame]]
HOST_READS: Decoders = {int(kind): RECORDS[kind].decode for kind in TO_HOST}
CALLER_READS: Decoders = {int(kind): RECORDS[kind].decode for kind in TO_CALLER}


def decode_frame(raw: Any, reads: Decoders) -> Frame:
    """The record of a received frame, one of the kinds ``reads`` knows (:data:`HOST_READS`
    or :data:`CALLER_READS`); ``ValueError`` for anything else or of the wrong shape."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("a frame must be a non-empty array")
    kind = raw[0]
    decoder = reads.get(kind) if isinstance(kind, int) else None
    if decoder is None:
        raise ValueError(f"unexpected frame kind {kind!r}")
    return decoder(raw)


def _fields(raw: list[Any], count: int, name: str) -> None:
    if len(raw) != count + 1:
        raise ValueError(f"a {name} frame has {count} fields, not {len(raw) - 1}")
