"""A client socket a server took out of ASGI (see :mod:`actors.websockets.detach`).

The socket is held only by its connection and this object: messages arrive as callbacks,
writes go straight to the transport, and a task exists only while messages wait to reach
the object, so an idle socket costs no task (tens of thousands may sit idle).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from raydo.storage.limits import Limits

from .._spec import HostKey
from ._client import CUT_AFTER_S, CloseFrame, SendEvent, SocketBase
from ._state import SocketState
from .detach import DetachedConnection, SocketSink

Detach = Callable[[SocketSink], DetachedConnection | None]
"""The server's offer (``scope["extensions"][DETACH_EXTENSION]["detach"]``)."""

log = logging.getLogger("raydo.websockets")

# Messages waiting for the object before the client's reading is paused, and resumed.
INBOX_PAUSE = 8
INBOX_RESUME = 2


class _End(NamedTuple):
    """In the inbox: the connection ended (after the messages before it)."""

    code: int
    reason: str
    clean: bool


class DetachedSocket(SocketBase):
    """A :class:`ClientSocket` over a :class:`DetachedConnection`; it is also the
    connection's :class:`~actors.websockets.detach.SocketSink`."""

    __slots__ = ("_connection", "_inbox", "_pump")

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
        super().__init__(sid, key, object_hex, limits, auto, send_event, on_end)
        self._connection: DetachedConnection | None = None  # once the server took the socket
        self._inbox: deque[str | bytes | _End] = deque()
        self._pump: asyncio.Task[None] | None = None  # only while the inbox holds something

    def detach_from(self, offer: Detach) -> bool:
        """Ask the server to hand the socket over; False when it is no longer open."""
        self._connection = offer(self)
        return self._connection is not None

    def release(self) -> None:
        """Start reading: what arrived before the detach comes first."""
        assert self._connection is not None
        self._connection.release()

    # ---- writing: the hub and the connection call these -----------------------------------

    def _write_soon(self) -> None:
        self.drain()

    def drain(self) -> None:
        """Write what is queued while the connection takes it (no task: writes don't block)."""
        connection = self._connection
        if connection is None:
            return
        while self.outgoing and connection.writable_now:
            item = self.outgoing.popleft()
            if isinstance(item, CloseFrame):
                self.outgoing.clear()
                connection.close_socket(item.code, item.reason)
                return
            connection.send_message(item)

    def _cut(self, code: int, reason: str) -> None:
        connection = self._connection
        assert connection is not None
        connection.close_socket(code, reason)
        asyncio.get_running_loop().call_later(2 * CUT_AFTER_S, connection.abort)

    # ---- reading: the connection calls these ---------------------------------------------

    def message(self, data: str | bytes) -> None:
        """A client message."""
        if self.state is SocketState.OPEN and self.admit(data):
            self._to_object(data)

    def closed(self, code: int, reason: str, clean: bool) -> None:
        """The connection ended (reported once): the object hears of it after the messages
        before it."""
        self._to_object(_End(code, reason, clean))

    def _to_object(self, item: str | bytes | _End) -> None:
        self._inbox.append(item)
        connection = self._connection
        assert connection is not None
        if len(self._inbox) >= INBOX_PAUSE:
            connection.pause_reading()
        if self._pump is None:
            self._pump = asyncio.ensure_future(self._deliver_inbox())
            connection.track(self._pump)  # the server's shutdown waits for it

    async def _deliver_inbox(self) -> None:
        """Deliver the inbox to the object in order, one event at a time, then end."""
        connection = self._connection
        assert connection is not None
        try:
            while self._inbox:
                item = self._inbox.popleft()
                if len(self._inbox) <= INBOX_RESUME:
                    connection.resume_reading()
                if isinstance(item, _End):
                    await self.ended(item.code, item.reason, item.clean)
                    return
                try:
                    await self.deliver(item)
                except Exception as exc:  # noqa: BLE001 - one lost message, not the socket
                    log.warning(
                        "WebSocket %s: a message did not reach the object: %s", self.sid, exc
                    )
        finally:
            self._pump = None
