"""WebSockets as an object sees them: handles, tags, attachments and the output gate.

Client sockets live in the gateway process that accepted them; an object holds records of its
sockets in its own file (:mod:`actors.websockets._records`) and a :class:`WebSocket` handle per
socket.
What a handler sends waits in the turn's outbox and leaves only after the event's writes
commit, so no client sees state that may still roll back; an event that raises sends nothing.
Pushes (:mod:`actors._payloads`) go to the gateway holding the socket, one per gateway and
message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from raydo.storage import codec
from raydo.storage.limits import LimitExceeded, Limits

from .._payloads import AutoPush, ClosePush, Push, SendPush
from ._records import SocketRecord, SocketRecords

if TYPE_CHECKING:
    from raydo.storage import StorageCore

UPGRADE_SCOPE_KEY = "raydo.upgrade"
CLOSE_REASON_BYTES = 123

PushTo = Callable[[str, Push], None]
"""Deliver a push to the gateway holding its sockets: ``push(gateway_id, push)``."""


class WebSocket:
    """One client socket, from inside its object: ``send``, ``close``, attachments."""

    __slots__ = ("_closed", "_sockets", "sid")

    def __init__(
        self, sockets: ObjectSockets, sid: str, closed: SocketRecord | None = None
    ) -> None:
        self._sockets = sockets
        self.sid = sid
        self._closed = closed  # what a closed socket was, for its web_socket_close handler

    def __repr__(self) -> str:
        return f"WebSocket({self.sid})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebSocket) and other.sid == self.sid

    def __hash__(self) -> int:
        return hash(self.sid)

    def send(self, message: str | bytes) -> None:
        """Send a text or binary message; it leaves once the event's writes have committed."""
        if not isinstance(message, (str, bytes)):
            raise TypeError(f"ws.send takes str or bytes, got {type(message).__name__}")
        size = len(message.encode("utf-8")) if isinstance(message, str) else len(message)
        self._sockets.limits.check("websocket_message_bytes", size, "the WebSocket message")
        self._sockets.queue_send(self.sid, message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket with ``code`` and ``reason`` (at most 123 bytes), after the commit."""
        if not isinstance(code, int) or not (code == 1000 or 3000 <= code <= 4999):
            raise ValueError(f"close code must be 1000 or 3000-4999, got {code!r}")
        if len(reason.encode("utf-8")) > CLOSE_REASON_BYTES:
            raise ValueError(f"a close reason is at most {CLOSE_REASON_BYTES} bytes of UTF-8")
        self._sockets.queue_close(self.sid, code, reason)

    def serialize_attachment(self, value: Any) -> None:
        """Keep ``value`` with the socket (it survives eviction and restarts)."""
        data = None if value is None else codec.encode(value)
        if data is not None:
            self._sockets.limits.check("attachment_bytes", len(data), "the attachment")
        self._sockets.attach(self.sid, data)

    def deserialize_attachment(self) -> Any:
        """The value last given to ``serialize_attachment``, or None."""
        record = self._sockets.record(self.sid) or self._closed
        if record is None or record.attachment is None:
            return None
        return codec.decode(record.attachment)

    @property
    def tags(self) -> list[str]:
        record = self._sockets.record(self.sid) or self._closed
        return [] if record is None else list(record.tags)


class ObjectSockets:
    """The sockets of one object: its records, cached, and the current turn's outbox.

    Every push it makes names ``object_hex``, the object it belongs to: the gateway holding a
    socket applies only the pushes of that socket's own object.
    """

    def __init__(
        self, storage: StorageCore, limits: Limits, push: PushTo, *, object_hex: str
    ) -> None:
        self.object_hex = object_hex
        self.limits = limits
        self._records = SocketRecords(storage)
        self._push = push
        self._cache: dict[str, SocketRecord] | None = None
        # (gateway, sid, what): a message to send (the common case, kept cheap: a broadcast
        # queues one entry per socket), or a close or auto push for that one socket.
        self._outbox: list[tuple[str, str, str | bytes | Push]] = []

    # ---- records --------------------------------------------------------------------------

    def _all(self) -> dict[str, SocketRecord]:
        if self._cache is None:
            self._cache = {r.sid: r for r in self._records.all()}
        return self._cache

    def record(self, sid: str) -> SocketRecord | None:
        return self._all().get(sid)

    def accept(self, sid: str, gateway: str, tags: Iterable[str]) -> None:
        tags = list(dict.fromkeys(tags))  # duplicates are ignored, order kept
        limits = self.limits
        if len(tags) > limits.socket_tags:
            raise LimitExceeded("socket_tags", f"{len(tags)} tags; at most {limits.socket_tags}")
        for tag in tags:
            if not isinstance(tag, str):
                raise TypeError(f"tags are str, got {type(tag).__name__}")
            if len(tag) > limits.tag_chars:
                raise LimitExceeded(
                    "tag_chars", f"a tag of {len(tag)} characters; at most {limits.tag_chars}"
                )
        record = SocketRecord(sid, gateway, tags, None)
        self._records.add(record)
        self._all()[sid] = record

    def forget(self, sid: str) -> SocketRecord | None:
        record = self._all().pop(sid, None)
        self._records.remove(sid)
        return record

    def attach(self, sid: str, data: bytes | None) -> None:
        record = self.record(sid)
        if record is None:
            raise ValueError(f"{sid} is not an open socket of this object")
        self._records.attach(sid, data)
        record.attachment = data

    def handles(self, tag: str | None = None) -> list[WebSocket]:
        return [
            WebSocket(self, sid)
            for sid, record in self._all().items()
            if tag is None or tag in record.tags
        ]

    @property
    def auto_response(self) -> tuple[str, str] | None:
        return self._records.auto_response()

    def set_auto_response(self, pair: tuple[str, str] | None) -> None:
        self._records.set_auto_response(pair)
        for record in self._all().values():
            push = AutoPush(self.object_hex, [record.sid], pair)
            self._outbox.append((record.gateway, record.sid, push))

    # ---- the outbox -----------------------------------------------------------------------

    def queue_send(self, sid: str, message: str | bytes) -> None:
        record = self.record(sid)
        if record is not None:
            self._outbox.append((record.gateway, sid, message))

    def queue_close(self, sid: str, code: int, reason: str) -> None:
        record = self.forget(sid)
        if record is not None:
            push = ClosePush(self.object_hex, [sid], code, reason)
            self._outbox.append((record.gateway, sid, push))

    @property
    def pending(self) -> bool:
        """True while sends, closes or auto-response changes wait for the next commit."""
        return bool(self._outbox)

    def take_pushes(self) -> list[tuple[str, Push]]:
        """What the turn sent so far, in order, for :meth:`release` once the commit allows
        (and forgotten here). Consecutive sends of one message to sockets of one gateway
        share a push, so a broadcast is one push per gateway."""
        if not self._outbox:
            return []
        outbox, self._outbox = self._outbox, []
        pushes: list[tuple[str, Push]] = []
        last: dict[str, int] = {}  # gateway -> index of its latest push
        for gateway, sid, what in outbox:
            if isinstance(what, (str, bytes)):
                index = last.get(gateway)
                if index is not None:
                    latest = pushes[index][1]
                    if type(latest) is SendPush and latest.message is what:
                        latest.sids.append(sid)
                        continue
                push: Push = SendPush(self.object_hex, [sid], what)
            else:
                push = what
            pushes.append((gateway, push))
            last[gateway] = len(pushes) - 1
        return pushes

    def release(self, pushes: list[tuple[str, Push]]) -> None:
        """Let pushes taken by :meth:`take_pushes` leave (their commit allows it now)."""
        for gateway, push in pushes:
            self._push(gateway, push)

    def discard(self) -> None:
        """After a rollback: nothing the turn sent leaves, and records are re-read."""
        self._outbox.clear()
        self._cache = None


class WebSocketAccepted(Response):
    """The 101 answer to an upgrade; ``websocket`` is the new socket's handle, so the handler
    can greet it or give it an attachment before returning."""

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(status_code=101)
        self.websocket = websocket


def accept_response(
    request: Request, sockets: ObjectSockets, tags: Iterable[str]
) -> WebSocketAccepted:
    """What ``ctx.accept_websocket`` does: record the socket and answer 101."""
    upgrade = request.scope.get(UPGRADE_SCOPE_KEY)
    if upgrade is None:
        raise ValueError("accept_websocket needs the request of a WebSocket upgrade")
    sid, gateway = upgrade
    if sockets.record(sid) is not None:
        raise ValueError("this WebSocket was already accepted")
    sockets.accept(sid, gateway, tags)
    return WebSocketAccepted(WebSocket(sockets, sid))
