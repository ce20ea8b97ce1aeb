"""What events, replies and WebSocket pushes carry: one small record each.

An :class:`actors.types.Event`'s ``payload`` is one of these records, encoded as a msgpack
array of its fields in order; a field marked ``?`` is left off when it is None. Pushes travel
from a host to the gateway holding a socket (inside a ``PUSH`` frame, see
:mod:`actors._frames`), their operation first.

============= ================ ============================================
record        carried as       fields
============= ================ ============================================
FetchRequest  event FETCH      method, path, query, headers, body, upgrade?
Upgrade       upgrade          sid, gateway
FetchReply    reply FETCH      status, headers, body, auto_response?
RpcCall       event RPC        method, arguments
AlarmRun      event ALARM      retries, mode
Control       event CONTROL    operation, arguments*
SocketMessage event WS_MESSAGE sid, message
SocketClose   event WS_CLOSE   sid, code, reason, was_clean
SocketError   event WS_ERROR   sid, message
SendPush      push send        object_hex, sids, message
ClosePush     push close       object_hex, sids, code, reason
AutoPush      push auto        object_hex, sids, pair
============= ================ ============================================

A FETCH ``body`` of None streams: its bytes follow in the stream frames of the event (a
request body) or of its reply (a reply body), see :mod:`actors._streams`.
``headers`` are ``[[name, value], ...]`` of bytes; ``arguments`` of an RPC call are the
codec's encoding of ``[args, kwargs]`` (its reply is the codec's encoding of the result);
an alarm's ``mode`` is "due", "now" or "drop"; a control operation's ``arguments*`` follow
it in the array (``["sql", query, params]``, ``["alarm"]``, ``["evict"]``). ``pair`` is the
auto-response ``[request_text, response_text]`` or None. A push names the object it comes
from (``object_hex``): a gateway applies it only to sockets of that object on the host whose
link it came over.

``encode()`` gives the array (a list: hosts read payloads as lists); ``decode(raw)`` refuses
a malformed one with ``ValueError``. Nothing else takes these arrays apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .types import EventKind

Headers = list[list[bytes]]


class Upgrade(NamedTuple):
    """A WebSocket upgrade travelling with its request: the socket's id and its gateway."""

    sid: str
    gateway: str

    def encode(self) -> list[Any]:
        return [self.sid, self.gateway]

    @classmethod
    def decode(cls, raw: Any) -> Upgrade:
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError("malformed upgrade")
        return cls(str(raw[0]), str(raw[1]))


class FetchRequest(NamedTuple):
    """An HTTP request for an object's ``fetch`` (with its upgrade, for a WebSocket)."""

    method: str
    path: str
    query: bytes
    headers: Headers
    body: bytes | None
    """None: the body streams beside the event."""
    upgrade: Upgrade | None = None

    def encode(self) -> list[Any]:
        fields: list[Any] = [self.method, self.path, self.query, self.headers, self.body]
        if self.upgrade is not None:
            fields.append(self.upgrade.encode())
        return fields

    @classmethod
    def decode(cls, raw: Any) -> FetchRequest:
        if not isinstance(raw, list) or len(raw) not in (5, 6):
            raise ValueError("malformed fetch event")
        method, path, query, headers, body = raw[:5]
        if not (
            isinstance(method, str)
            and isinstance(path, str)
            and isinstance(query, bytes)
            and isinstance(headers, list)
            and (body is None or isinstance(body, bytes))
        ):
            raise ValueError("malformed fetch event")
        upgrade = Upgrade.decode(raw[5]) if len(raw) == 6 else None
        return cls(method, path, query, headers, body, upgrade)


class FetchReply(NamedTuple):
    """An object's HTTP response; a 101 to an upgrade carries the auto-response pair."""

    status: int
    headers: Headers
    body: bytes | None
    """None: the body streams after this head."""
    auto_response: tuple[str, str] | None = None

    def encode(self) -> list[Any]:
        fields: list[Any] = [self.status, self.headers, self.body]
        if self.auto_response is not None:
            fields.append(list(self.auto_response))
        return fields

    @classmethod
    def decode(cls, raw: Any) -> FetchReply:
        if not isinstance(raw, list) or len(raw) not in (3, 4):
            raise ValueError("malformed fetch reply")
        status, headers, body = raw[:3]
        pair = raw[3] if len(raw) == 4 else None
        return cls(status, headers, body, None if pair is None else (str(pair[0]), str(pair[1])))


class RpcCall(NamedTuple):
    """A call of a public method; ``arguments`` is ``codec.encode([args, kwargs])``."""

    method: str
    arguments: bytes

    def encode(self) -> list[Any]:
        return [self.method, self.arguments]

    @classmethod
    def decode(cls, raw: Any) -> RpcCall:
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError("malformed RPC event")
        method, arguments = raw
        return cls(method, arguments)


ALARM_MODES = ("due", "now", "drop")


class AlarmRun(NamedTuple):
    """An alarm a host sends itself: run it if due ("due"), at once ("now"), or drop it."""

    retries: int
    mode: str

    def encode(self) -> list[Any]:
        return [self.retries, self.mode]

    @classmethod
    def decode(cls, raw: Any) -> AlarmRun:
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError("malformed alarm event")
        retries, mode = raw
        if not isinstance(retries, int) or mode not in ALARM_MODES:
            raise ValueError("malformed alarm event")
        return cls(retries, mode)


class Control(NamedTuple):
    """A test or inspection hook: ``alarm`` (run it now), ``sql`` (query, params), ``evict``."""

    operation: str
    arguments: tuple[Any, ...] = ()

    @classmethod
    def alarm(cls) -> Control:
        return cls("alarm")

    @classmethod
    def sql(cls, query: str, params: list[Any]) -> Control:
        return cls("sql", (query, params))

    @classmethod
    def evict(cls) -> Control:
        return cls("evict")

    def encode(self) -> list[Any]:
        return [self.operation, *self.arguments]

    @classmethod
    def decode(cls, raw: Any) -> Control:
        if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
            raise ValueError("malformed control event")
        return cls(raw[0], tuple(raw[1:]))


class SocketMessage(NamedTuple):
    """A client sent a text (str) or binary (bytes) message."""

    sid: str
    message: str | bytes

    def encode(self) -> list[Any]:
        return [self.sid, self.message]

    @classmethod
    def decode(cls, raw: Any) -> SocketMessage:
        sid, message = _socket_fields(raw, 2)
        if not isinstance(message, (str, bytes)):
            raise ValueError("malformed WebSocket event")
        return cls(sid, message)


class SocketClose(NamedTuple):
    """The socket closed: its code and reason, and whether the client sent a Close frame."""

    sid: str
    code: int
    reason: str
    was_clean: bool

    def encode(self) -> list[Any]:
        return [self.sid, self.code, self.reason, self.was_clean]

    @classmethod
    def decode(cls, raw: Any) -> SocketClose:
        sid, code, reason, was_clean = _socket_fields(raw, 4)
        return cls(sid, int(code), str(reason), bool(was_clean))


class SocketError(NamedTuple):
    """The socket failed other than by closing."""

    sid: str
    message: str

    def encode(self) -> list[Any]:
        return [self.sid, self.message]

    @classmethod
    def decode(cls, raw: Any) -> SocketError:
        sid, message = _socket_fields(raw, 2)
        return cls(sid, str(message))


def _socket_fields(raw: Any, count: int) -> list[Any]:
    if not isinstance(raw, list) or len(raw) != count:
        raise ValueError("malformed WebSocket event")
    return [str(raw[0]), *raw[1:]]


Payload = FetchRequest | RpcCall | AlarmRun | Control | SocketMessage | SocketClose | SocketError

PAYLOADS: dict[EventKind, Callable[[Any], Payload]] = {
    EventKind.FETCH: FetchRequest.decode,
    EventKind.RPC: RpcCall.decode,
    EventKind.ALARM: AlarmRun.decode,
    EventKind.CONTROL: Control.decode,
    EventKind.WS_MESSAGE: SocketMessage.decode,
    EventKind.WS_CLOSE: SocketClose.decode,
    EventKind.WS_ERROR: SocketError.decode,
}
"""How to read each event kind's payload."""


def decode_payload(kind: EventKind, raw: Any) -> Payload:
    """The record of an event's payload; ``ValueError`` when it is malformed."""
    return PAYLOADS[kind](raw)


# ---- pushes: from a host to the gateway holding the sockets -------------------------------


class SendPush(NamedTuple):
    """Object ``object_hex`` sends one message to each of ``sids`` (a broadcast is one push
    per gateway)."""

    object_hex: str
    sids: list[str]
    message: str | bytes

    def encode(self) -> list[Any]:
        return ["send", self.object_hex, self.sids, self.message]


class ClosePush(NamedTuple):
    """Object ``object_hex`` closed ``sids`` with ``code`` and ``reason``."""

    object_hex: str
    sids: list[str]
    code: int
    reason: str

    def encode(self) -> list[Any]:
        return ["close", self.object_hex, self.sids, self.code, self.reason]


class AutoPush(NamedTuple):
    """Object ``object_hex``'s auto-response pair changed (None: unset)."""

    object_hex: str
    sids: list[str]
    pair: tuple[str, str] | None

    def encode(self) -> list[Any]:
        return ["auto", self.object_hex, self.sids, None if self.pair is None else list(self.pair)]


Push = SendPush | ClosePush | AutoPush

PUSHES: dict[str, type[Push]] = {"send": SendPush, "close": ClosePush, "auto": AutoPush}
"""The record of each push operation."""


def decode_push(raw: Any) -> Push:
    """The record of a received push; ``ValueError`` for a malformed one."""
    if (
        not isinstance(raw, list)
        or len(raw) < 3
        or not isinstance(raw[1], str)
        or not isinstance(raw[2], list)
        or not all(isinstance(sid, str) for sid in raw[2])
    ):
        raise ValueError("malformed push")
    operation, object_hex, sids = raw[0], raw[1], raw[2]
    if operation == "send" and len(raw) == 4 and isinstance(raw[3], (str, bytes)):
        return SendPush(object_hex, sids, raw[3])
    if operation == "close" and len(raw) == 5 and type(raw[3]) is int and isinstance(raw[4], str):
        return ClosePush(object_hex, sids, raw[3], raw[4])
    if operation == "auto" and len(raw) == 4:
        pair = raw[3]
        if pair is not None and not (isinstance(pair, list) and len(pair) == 2):
            raise ValueError("malformed push 'auto'")
        return AutoPush(object_hex, sids, None if pair is None else (str(pair[0]), str(pair[1])))
    raise ValueError(f"malformed push {operation!r}")
