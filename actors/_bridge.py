"""The gateway's side of WebSockets: the client sockets a gateway process holds.

What happens to one socket, in order:

1. ``await stub.fetch(websocket)`` sends the upgrade request to the object with a socket id.
   If the object answers 101 (it called ``ctx.accept_websocket``), the gateway accepts the
   client; any other answer reaches the client as that HTTP response, before any upgrade.
2. Each client message becomes a ``WS_MESSAGE`` event for the object, in order, unless it
   equals the object's auto-response request: then the gateway answers it alone.
3. Pushes from the object's host (``send``, ``close``, ``auto``) go into the socket's bounded
   outgoing queue; a client that cannot keep up is closed with 1008.
4. A close from the client becomes ``WS_CLOSE`` with its code and ``was_clean=True``; a
   dropped connection, 1006 with ``was_clean=False``; exactly once either way.

Because the socket lives here and not in the object, the object may be evicted while its
clients stay connected: the next message constructs it again.

When the server offers the ``raydo.detach`` scope extension (raydo's own uvicorn protocol,
``gateway._ws_protocol``), the socket leaves ASGI once accepted: the app's call returns and
the socket is held only by its connection and a :class:`ClientSocket`, which receives
messages as callbacks and has a task only while messages wait to reach the object. Under any
other server, ``serve`` reads the socket through ASGI until it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketState

from raydo.storage.limits import Limits

from ._errors import HostUnavailable, RaydoError
from ._metrics import SocketCounts
from ._spec import HostKey
from .types import EventKind

log = logging.getLogger("raydo.websockets")

SendEvent = Callable[[EventKind, list[Any]], Awaitable[Any]]
#: The scope extension a server offers to take an accepted socket out of ASGI.
DETACH_EXTENSION = "raydo.detach"
_CLOSE = object()
# Messages waiting for the object before the client's reading is paused, and resumed.
INBOX_PAUSE = 8
INBOX_RESUME = 2
TOO_SLOW = 1008
TOO_BIG = 1009
CUT_AFTER_S = 1.0
CLOSE_ATTEMPTS = 6


class Connection(Protocol):
    """A socket taken out of ASGI (``gateway._ws_protocol.LeanWebSocketProtocol``)."""

    @property
    def writable_now(self) -> bool: ...

    def send_message(self, data: str | bytes) -> None: ...

    def close_socket(self, code: int, reason: str) -> None: ...

    def abort(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def track(self, task: asyncio.Task[Any]) -> None: ...

    def release(self) -> None: ...


class ClientSocket:
    """One accepted client socket. Its tasks exist only while messages wait, so an idle
    socket costs no task (tens of thousands may sit idle)."""

    __slots__ = (
        "auto",
        "closed_by_object",
        "closing",
        "connection",
        "dropped",
        "hub",
        "inbox",
        "key",
        "limit",
        "message_limit",
        "object_hex",
        "outgoing",
        "pump",
        "send_event",
        "sender",
        "sid",
        "websocket",
    )

    def __init__(
        self,
        websocket: WebSocket | None,
        sid: str,
        key: HostKey,
        object_hex: str,
        limits: Limits,
    ) -> None:
        self.websocket = websocket
        self.sid = sid
        self.key = key
        self.object_hex = object_hex
        self.auto: tuple[str, str] | None = None
        self.closed_by_object = False
        self.closing = False
        self.dropped: tuple[int, str] | None = None  # why the gateway cut the client off
        self.limit = limits.socket_queue
        self.message_limit = limits.websocket_message_bytes
        self.outgoing: deque[Any] = deque()
        self.sender: asyncio.Future[None] | None = None
        self.hub: SocketHub | None = None
        self.send_event: SendEvent | None = None
        # Set once detached from ASGI:
        self.connection: Connection | None = None
        self.inbox: deque[Any] = deque()
        self.pump: asyncio.Task[None] | None = None

    def enqueue(self, message: str | bytes) -> bool:
        """Queue a message; False when the client is too far behind to take it."""
        if self.closing:
            return True
        if len(self.outgoing) >= self.limit:
            return False
        self.outgoing.append(message)
        self._kick()
        return True

    def close_soon(self, code: int, reason: str, *, drop_queued: bool = False) -> None:
        """Close after what is queued (or at once, dropping it, for a client left behind)."""
        if self.closing:
            return
        self.closing = True
        if drop_queued:
            self.outgoing.clear()
        self.outgoing.append((_CLOSE, code, reason))
        self._kick()

    def _kick(self) -> None:
        if self.connection is not None:
            self.drain()
        elif self.sender is None or self.sender.done():
            self.sender = asyncio.ensure_future(self._write())

    # A detached socket: the connection calls these.

    def drain(self) -> None:
        """Write what is queued while the connection takes it (no task: writes don't block)."""
        connection = self.connection
        assert connection is not None
        while self.outgoing and connection.writable_now:
            item = self.outgoing.popleft()
            if isinstance(item, tuple):
                self.outgoing.clear()
                connection.close_socket(item[1], item[2])
                return
            connection.send_message(item)

    def admit(self, data: str | bytes) -> bool:
        """Whether a client message goes on to the object. One over the limit closes the
        socket (1009); one equal to the auto-response request is answered here."""
        size = len(data.encode()) if isinstance(data, str) else len(data)
        if size > self.message_limit:
            self.dropped = (TOO_BIG, f"message over {self.message_limit} bytes")
            self.close_soon(TOO_BIG, self.dropped[1], drop_queued=True)
            return False
        if self.auto is not None and isinstance(data, str) and data == self.auto[0]:
            self.enqueue(self.auto[1])  # the object stays asleep
            return False
        return True

    def message(self, data: str | bytes) -> None:
        """A client message of a detached socket."""
        if not self.closing and self.admit(data):
            self._to_object(data)

    def closed(self, code: int, reason: str, clean: bool) -> None:
        """The connection ended (reported once): the object hears of it after the messages
        before it."""
        self._to_object((_CLOSE, code, reason, clean))

    def _to_object(self, item: Any) -> None:
        self.inbox.append(item)
        connection = self.connection
        assert connection is not None
        if len(self.inbox) >= INBOX_PAUSE:
            connection.pause_reading()
        if self.pump is None:
            self.pump = asyncio.ensure_future(self._pump())
            connection.track(self.pump)

    async def _pump(self) -> None:
        """Deliver the inbox to the object in order, one event at a time, then end."""
        assert self.connection is not None and self.send_event is not None
        try:
            while self.inbox:
                item = self.inbox.popleft()
                if len(self.inbox) <= INBOX_RESUME:
                    self.connection.resume_reading()
                if isinstance(item, tuple):
                    await self._finish(item[1], item[2], item[3])
                    return
                try:
                    await _quietly(
                        self.send_event(EventKind.WS_MESSAGE, [self.sid, item]), self.sid
                    )
                except Exception as exc:  # noqa: BLE001 - one lost message, not the socket
                    log.warning(
                        "WebSocket %s: a message did not reach the object: %s", self.sid, exc
                    )
        finally:
            self.pump = None

    async def _finish(self, code: int, reason: str, clean: bool) -> None:
        """The socket is gone: the object hears why, once (unless it closed it itself)."""
        assert self.hub is not None and self.send_event is not None
        self.hub._sockets.pop(self.sid, None)
        self.closing = True
        if self.dropped is not None:
            (code, reason), clean = self.dropped, False
        if not self.closed_by_object:
            try:
                await _report_close(self.send_event, [self.sid, code, reason, clean], self.sid)
            except Exception as exc:  # noqa: BLE001 - logged; nothing else is left to do
                log.error("WebSocket %s: its close never reached the object: %s", self.sid, exc)

    async def _write(self) -> None:
        websocket = self.websocket
        assert websocket is not None
        while self.outgoing:
            item = self.outgoing.popleft()
            if websocket.application_state != WebSocketState.CONNECTED:
                return
            if isinstance(item, tuple):
                with contextlib.suppress(Exception):
                    await websocket.close(item[1], item[2])
                return
            try:
                if isinstance(item, str):
                    await websocket.send_text(item)
                else:
                    await websocket.send_bytes(item)
            except Exception:  # noqa: BLE001 - the client went away; the reader sees why
                return


class SocketHub:
    """Every client socket of this gateway process, and the pushes that reach them."""

    def __init__(self, limits: Limits) -> None:
        self.gateway_id = os.urandom(8).hex()
        self.limits = limits
        self._sockets: dict[str, ClientSocket] = {}
        self._pending: dict[str, list[list[Any]]] = {}
        self._ids = itertools.count()
        self.counts: dict[str, SocketCounts] = {}  # per binding, for the metrics endpoint

    def new_sid(self) -> str:
        """A socket id for an upgrade about to be sent. Pushes for it that arrive before the
        client is accepted (a greeting sent by the accepting event) wait for it."""
        sid = f"{self.gateway_id}.{next(self._ids)}"
        self._pending[sid] = []
        return sid

    def abandon(self, sid: str) -> None:
        """The upgrade was refused or failed: drop what waited for it."""
        self._pending.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sockets)

    def open_by_binding(self) -> dict[str, int]:
        """How many client sockets are open, per binding (for the metrics endpoint)."""
        found: dict[str, int] = {}
        for sock in list(self._sockets.values()):
            found[sock.key.binding] = found.get(sock.key.binding, 0) + 1
        return found

    def sockets_on(self, key: HostKey) -> list[list[str]]:
        """``[object_hex, sid]`` of every socket whose object lives on host ``key``."""
        return [[s.object_hex, s.sid] for s in self._sockets.values() if s.key == key]

    def push(self, frame: list[Any]) -> None:
        """Apply a push from a host: ``["send", sids, message]``, ``["close", sids, code,
        reason]`` or ``["auto", sids, pair]``."""
        operation, sids = frame[0], frame[1]
        for sid in sids:
            sock = self._sockets.get(sid)
            if sock is None:
                waiting = self._pending.get(sid)
                if waiting is not None and len(waiting) < self.limits.socket_queue:
                    waiting.append([operation, [sid], *frame[2:]])
                continue
            if operation == "send":
                if not sock.enqueue(frame[2]):
                    self._too_slow(sock)
            elif operation == "close":
                sock.closed_by_object = True
                sock.close_soon(frame[2], frame[3])
            elif operation == "auto":
                sock.auto = None if frame[2] is None else (frame[2][0], frame[2][1])

    def _too_slow(self, sock: ClientSocket) -> None:
        """Close a client that does not keep up with 1008, dropping what it has not taken.
        One that does not read at all would never take the close frame either: if it has not
        gone after a grace period, its connection is cut."""
        log.warning("closing WebSocket %s: its client is not reading fast enough", sock.sid)
        reason = "client too slow: outgoing queue full"
        sock.dropped = (TOO_SLOW, reason)
        sock.closing = True
        sock.outgoing.clear()
        if sock.connection is not None:
            sock.connection.close_socket(TOO_SLOW, reason)
            asyncio.get_running_loop().call_later(2 * CUT_AFTER_S, sock.connection.abort)
            return
        if sock.sender is not None:
            sock.sender.cancel()
        assert sock.websocket is not None
        sock.sender = asyncio.ensure_future(_close_or_cut(sock.websocket, TOO_SLOW, reason))

    async def serve(
        self,
        websocket: WebSocket,
        sid: str,
        key: HostKey,
        object_hex: str,
        auto: tuple[str, str] | None,
        send_event: SendEvent,
    ) -> None:
        """Accept the client, then hand the socket to its connection (returning at once) or,
        under a server that cannot detach it, pump its messages until it closes."""
        waiting = self._pending.pop(sid, [])
        sock = ClientSocket(websocket, sid, key, object_hex, self.limits)
        sock.auto, sock.hub, sock.send_event = auto, self, send_event
        self._sockets[sid] = sock
        code, reason, clean = 1006, "", False
        try:
            # Inside the try: a client gone before the accept still gets its 1006 reported.
            await websocket.accept()
            offer = websocket.scope.get("extensions", {}).get(DETACH_EXTENSION)
            connection = offer["detach"](sock) if offer is not None else None
            if connection is not None:
                sock.connection = connection
                sock.websocket = None
                for frame in waiting:
                    self.push(frame)
                connection.release()
                return
            for frame in waiting:
                self.push(frame)
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    code = int(message.get("code") or 1005)
                    reason = str(message.get("reason") or "")
                    clean = _closed_cleanly(websocket, code)
                    if not clean:
                        code, reason = 1006, "connection lost without a Close frame"
                    break
                text = message.get("text")
                data: str | bytes = text if text is not None else message.get("bytes") or b""
                if sock.admit(data):
                    await _quietly(send_event(EventKind.WS_MESSAGE, [sid, data]), sid)
                elif sock.dropped is not None:  # too big: reported as why it was dropped
                    break
        except Exception as exc:  # noqa: BLE001 - a broken connection is a 1006
            log.debug("WebSocket %s failed: %s", sid, exc)
        finally:
            if sock.connection is None:
                await self._served(sock, code, reason, clean)

    async def _served(self, sock: ClientSocket, code: int, reason: str, clean: bool) -> None:
        """The end of a socket read through ASGI: report its close once, finish writing."""
        await sock._finish(code, reason, clean)
        if sock.sender is not None and not sock.sender.done():
            await asyncio.wait({sock.sender}, timeout=5)
            sock.sender.cancel()


async def _close_or_cut(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason), CUT_AFTER_S)
    await asyncio.sleep(CUT_AFTER_S)
    transport = _transport_of(websocket)
    if transport is not None:
        # Still there after the grace period (a full buffer keeps even a closing transport
        # open): cut it.
        transport.abort()


def _protocol_of(websocket: WebSocket) -> Any:
    """The server's protocol object behind an ASGI WebSocket, when the server is uvicorn and no
    middleware wrapped ``receive``; None otherwise."""
    return getattr(getattr(websocket, "_receive", None), "__self__", None)


def _transport_of(websocket: WebSocket) -> asyncio.Transport | None:
    transport = getattr(_protocol_of(websocket), "transport", None)
    return transport if hasattr(transport, "abort") else None


def _closed_cleanly(websocket: WebSocket, code: int) -> bool:
    """Did the client send a Close frame? uvicorn reports a lost connection as 1005, the code
    of a Close frame without a status too, so ask its protocol which it was."""
    if code == 1006:
        return False
    if code != 1005:
        return True
    connection = getattr(_protocol_of(websocket), "conn", None)
    if connection is None or not hasattr(connection, "close_rcvd"):
        return True
    return connection.close_rcvd is not None


async def _report_close(send_event: SendEvent, payload: list[Any], sid: str) -> None:
    """The object must hear of the close exactly once: retry while its host restarts."""
    for attempt in range(CLOSE_ATTEMPTS):
        try:
            await send_event(EventKind.WS_CLOSE, payload)
            return
        except HostUnavailable as exc:
            if attempt == CLOSE_ATTEMPTS - 1:
                log.error("WebSocket %s: its close never reached the object: %s", sid, exc)
                return
            await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
        except RaydoError as exc:
            log.warning("WebSocket %s: the object's close handler failed: %s", sid, exc)
            return


async def _quietly(event: Awaitable[Any], sid: str) -> None:
    try:
        await event
    except RaydoError as exc:
        log.warning("WebSocket %s: the object's handler failed: %s", sid, exc)
