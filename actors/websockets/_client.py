"""A client socket the gateway holds: one interface, two transports.

:class:`ClientSocket` is what the hub asks of a socket. Two classes implement it: a
:class:`~actors.websockets._detached.DetachedSocket`, which a server took out of ASGI
(callbacks, no task while idle), and an :class:`~actors.websockets._asgi.AsgiSocket`, read
through ASGI under any other server. :class:`SocketBase` is what both share: the state, the
bounded outgoing queue, the checks on a client's message, and reporting the end once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

from raydo.storage.limits import Limits

from .._errors import HostUnavailable, RaydoError
from .._payloads import SocketClose, SocketMessage
from .._spec import HostKey
from ._state import SocketState

log = logging.getLogger("raydo.websockets")

SendEvent = Callable[[SocketMessage | SocketClose], Awaitable[Any]]
"""Deliver a socket's event to its object (through the stub that accepted it)."""

TOO_SLOW = 1008
TOO_BIG = 1009
CUT_AFTER_S = 1.0
CLOSE_ATTEMPTS = 6


class CloseFrame(NamedTuple):
    """In the outgoing queue: close the socket (nothing queued after it is sent)."""

    code: int
    reason: str


class ClientSocket(Protocol):
    """What the hub asks of one accepted client socket."""

    sid: str
    key: HostKey
    object_hex: str
    auto: tuple[str, str] | None
    """The object's auto-response pair: a text message equal to the first is answered here
    with the second, and the object stays asleep."""

    @property
    def state(self) -> SocketState: ...

    def send(self, message: str | bytes) -> bool:
        """Queue a message; False when the client is too far behind to take it."""

    def close(self, code: int, reason: str) -> None:
        """The object closed the socket: close it after what is queued."""

    def cut_off(self) -> None:
        """Close a client that does not keep up (1008), dropping what it has not taken."""


class SocketBase:
    """The part of a client socket both transports share."""

    __slots__ = (
        "_closed_by_object",
        "_dropped",
        "_limit",
        "_message_limit",
        "_on_end",
        "_send_event",
        "_state",
        "auto",
        "key",
        "object_hex",
        "outgoing",
        "sid",
    )

    def __init__(
        self,
        sid: str,
        key: HostKey,
        object_hex: str,
        limits: Limits,
        auto: tuple[str, str] | None,
        send_event: SendEvent,
        on_end: Callable[[str], None],
    ) -> None:
        self.sid = sid
        self.key = key
        self.object_hex = object_hex
        self.auto = auto
        self._state = SocketState.CONNECTING
        self._limit = limits.socket_queue
        self._message_limit = limits.websocket_message_bytes
        self._send_event = send_event
        self._on_end = on_end
        self._closed_by_object = False
        self._dropped: tuple[int, str] | None = None  # why the gateway cut the client off
        self.outgoing: deque[str | bytes | CloseFrame] = deque()

    @property
    def state(self) -> SocketState:
        return self._state

    def _become(self, to: SocketState) -> None:
        self._state = self._state.check(to)

    def opened(self) -> None:
        """The client is accepted and the hub routes pushes to this socket."""
        self._become(SocketState.OPEN)

    # ---- towards the client --------------------------------------------------------------

    def send(self, message: str | bytes) -> bool:
        if self._state is not SocketState.OPEN:
            return True  # closing: what is sent now is dropped, as after a close
        if len(self.outgoing) >= self._limit:
            return False
        self.outgoing.append(message)
        self._write_soon()
        return True

    def close(self, code: int, reason: str) -> None:
        self._closed_by_object = True
        self._close_soon(code, reason)

    def _close_soon(self, code: int, reason: str, *, drop_queued: bool = False) -> None:
        """Close after what is queued (or at once, dropping it, for a client left behind)."""
        if self._state is not SocketState.OPEN:
            return
        self._become(SocketState.CLOSING)
        if drop_queued:
            self.outgoing.clear()
        self.outgoing.append(CloseFrame(code, reason))
        self._write_soon()

    def cut_off(self) -> None:
        log.warning("closing WebSocket %s: its client is not reading fast enough", self.sid)
        reason = "client too slow: outgoing queue full"
        self._dropped = (TOO_SLOW, reason)
        if self._state is SocketState.OPEN:
            self._become(SocketState.CLOSING)
        self.outgoing.clear()
        self._cut(TOO_SLOW, reason)

    def _write_soon(self) -> None:
        """Start writing the outgoing queue (the transport's own way)."""
        raise NotImplementedError

    def _cut(self, code: int, reason: str) -> None:
        """Send a close now and cut the connection if the client is still there after a
        grace period (one that does not read at all never takes the close frame)."""
        raise NotImplementedError

    # ---- towards the object --------------------------------------------------------------

    def admit(self, data: str | bytes) -> bool:
        """Whether a client message goes on to the object. One over the limit closes the
        socket (1009); one equal to the auto-response request is answered here."""
        size = len(data.encode()) if isinstance(data, str) else len(data)
        if size > self._message_limit:
            self._dropped = (TOO_BIG, f"message over {self._message_limit} bytes")
            self._close_soon(TOO_BIG, self._dropped[1], drop_queued=True)
            return False
        if self.auto is not None and isinstance(data, str) and data == self.auto[0]:
            self.send(self.auto[1])  # the object stays asleep
            return False
        return True

    @property
    def dropped(self) -> bool:
        """Whether the gateway cut the client off (too slow, or a message too big)."""
        return self._dropped is not None

    async def deliver(self, data: str | bytes) -> None:
        """Hand one client message to the object; its failure loses that message only."""
        try:
            await self._send_event(SocketMessage(self.sid, data))
        except RaydoError as exc:
            log.warning("WebSocket %s: the object's handler failed: %s", self.sid, exc)

    async def ended(self, code: int, reason: str, clean: bool) -> None:
        """The connection is gone: the hub forgets the socket, and the object hears why,
        once (unless it closed the socket itself)."""
        self._on_end(self.sid)
        self._become(SocketState.CLOSED)
        if self._dropped is not None:
            (code, reason), clean = self._dropped, False
        if not self._closed_by_object:
            try:
                await report_close(self._send_event, SocketClose(self.sid, code, reason, clean))
            except Exception as exc:  # noqa: BLE001 - logged; nothing else is left to do
                log.error("WebSocket %s: its close never reached the object: %s", self.sid, exc)


async def report_close(send_event: SendEvent, close: SocketClose) -> None:
    """The object must hear of the close exactly once: retry while its host restarts."""
    for attempt in range(CLOSE_ATTEMPTS):
        try:
            await send_event(close)
            return
        except HostUnavailable as exc:
            if attempt == CLOSE_ATTEMPTS - 1:
                log.error("WebSocket %s: its close never reached the object: %s", close.sid, exc)
                return
            await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
        except RaydoError as exc:
            log.warning("WebSocket %s: the object's close handler failed: %s", close.sid, exc)
            return
