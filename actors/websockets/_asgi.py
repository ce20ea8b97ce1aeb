"""A client socket read through ASGI, under a server that cannot detach it.

The app's call stays open as long as the socket: :meth:`AsgiSocket.run` reads messages until
the client goes, and a writer task exists only while messages wait to be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from raydo.storage.limits import Limits

from .._spec import HostKey
from ._client import CUT_AFTER_S, CloseFrame, SendEvent, SocketBase

log = logging.getLogger("raydo.websockets")


class AsgiSocket(SocketBase):
    """A :class:`ClientSocket` over a Starlette ``WebSocket``."""

    __slots__ = ("_websocket", "_writer")

    def __init__(
        self,
        websocket: WebSocket,
        sid: str,
        key: HostKey,
        object_hex: str,
        limits: Limits,
        auto: tuple[str, str] | None,
        send_event: SendEvent,
        on_end: Callable[[str], None],
    ) -> None:
        super().__init__(sid, key, object_hex, limits, auto, send_event, on_end)
        self._websocket = websocket
        self._writer: asyncio.Future[None] | None = None

    def _write_soon(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        websocket = self._websocket
        while self.outgoing:
            item = self.outgoing.popleft()
            if websocket.application_state != WebSocketState.CONNECTED:
                return
            if isinstance(item, CloseFrame):
                with contextlib.suppress(Exception):
                    await websocket.close(item.code, item.reason)
                return
            try:
                if isinstance(item, str):
                    await websocket.send_text(item)
                else:
                    await websocket.send_bytes(item)
            except Exception:  # noqa: BLE001 - the client went away; the reader sees why
                return

    def _cut(self, code: int, reason: str) -> None:
        if self._writer is not None:
            self._writer.cancel()
        self._writer = asyncio.ensure_future(_close_or_cut(self._websocket, code, reason))

    async def run(self) -> None:
        """Pump the client's messages to the object until it goes; then report the end
        once and let the writer finish (at most 5 s)."""
        websocket = self._websocket
        code, reason, clean = 1006, "", False
        try:
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
                if self.admit(data):
                    await self.deliver(data)
                elif self.dropped:  # too big: reported as why it was dropped
                    break
        except Exception as exc:  # noqa: BLE001 - a broken connection is a 1006
            log.debug("WebSocket %s failed: %s", self.sid, exc)
        finally:
            await self.ended(code, reason, clean)
            writer = self._writer
            if writer is not None and not writer.done():
                await asyncio.wait({writer}, timeout=5)
                writer.cancel()


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
