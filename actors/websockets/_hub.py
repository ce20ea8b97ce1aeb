"""The client sockets of one gateway process, and the pushes from hosts that reach them."""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any

from starlette.websockets import WebSocket

from raydo.storage.limits import Limits

from .._metrics import SocketCounts
from .._payloads import ClosePush, Push, SendPush, SocketClose, decode_push
from .._spec import HostKey
from ._asgi import AsgiSocket
from ._client import ClientSocket, SendEvent, report_close
from ._detached import DetachedSocket
from .detach import DETACH_EXTENSION

log = logging.getLogger("raydo.websockets")


class SocketHub:
    """Every client socket of this gateway process, by socket id.

    A socket id is reserved when its upgrade is sent (:meth:`new_sid`); pushes for it that
    arrive before the client is open (a greeting sent by the accepting event) wait, bounded,
    and reach it once it is. From then on :meth:`push` routes each push to its socket.
    """

    def __init__(self, limits: Limits) -> None:
        self.gateway_id = os.urandom(8).hex()
        self.limits = limits
        self._sockets: dict[str, ClientSocket] = {}
        self._waiting: dict[str, list[Push]] = {}
        self._ids = itertools.count()
        self.counts: dict[str, SocketCounts] = {}  # per binding, for the metrics endpoint

    def new_sid(self) -> str:
        """A socket id for an upgrade about to be sent."""
        sid = f"{self.gateway_id}.{next(self._ids)}"
        self._waiting[sid] = []
        return sid

    def abandon(self, sid: str) -> None:
        """The upgrade was refused or failed, or the client left before it was accepted:
        drop what waited for it."""
        self._waiting.pop(sid, None)

    def open_by_binding(self) -> dict[str, int]:
        """How many client sockets are open, per binding (for the metrics endpoint)."""
        found: dict[str, int] = {}
        for sock in list(self._sockets.values()):
            found[sock.key.binding] = found.get(sock.key.binding, 0) + 1
        return found

    def sockets_on(self, key: HostKey) -> list[list[str]]:
        """``[object_hex, sid]`` of every socket whose object lives on host ``key``."""
        return [[s.object_hex, s.sid] for s in self._sockets.values() if s.key == key]

    def push(self, raw: list[Any]) -> None:
        """Apply a push from a host (an encoded :mod:`actors._payloads` push)."""
        push = decode_push(raw)
        for sid in push.sids:
            sock = self._sockets.get(sid)
            if sock is None:
                waiting = self._waiting.get(sid)
                if waiting is not None and len(waiting) < self.limits.socket_queue:
                    waiting.append(push._replace(sids=[sid]))
                continue
            if isinstance(push, SendPush):
                if not sock.send(push.message):
                    sock.cut_off()
            elif isinstance(push, ClosePush):
                sock.close(push.code, push.reason)
            else:
                sock.auto = push.pair

    def _open(self, sock: ClientSocket) -> None:
        """The client is accepted: pushes reach it, first those that waited for it."""
        self._sockets[sock.sid] = sock
        for push in self._waiting.pop(sock.sid, ()):
            self.push(push.encode())

    def _forget(self, sid: str) -> None:
        self._sockets.pop(sid, None)

    async def serve(
        self,
        websocket: WebSocket,
        sid: str,
        key: HostKey,
        object_hex: str,
        auto: tuple[str, str] | None,
        send_event: SendEvent,
    ) -> None:
        """Accept the client, then hand the socket to its server (returning at once) when
        the server offers :data:`DETACH_EXTENSION`, or else read it through ASGI until it
        closes. A client gone before the accept is reported to the object as a 1006."""
        accepted = False
        try:
            await websocket.accept()
            accepted = True
        except Exception as exc:  # noqa: BLE001 - a broken connection is a 1006
            log.debug("WebSocket %s failed: %s", sid, exc)
        finally:
            if not accepted:
                self.abandon(sid)
                await report_close(send_event, SocketClose(sid, 1006, "", False))
        if not accepted:
            return
        setup = (sid, key, object_hex, self.limits, auto, send_event, self._forget)
        offer = websocket.scope.get("extensions", {}).get(DETACH_EXTENSION)
        if offer is not None:
            detached = DetachedSocket(*setup)
            if detached.detach_from(offer["detach"]):
                detached.opened()
                self._open(detached)
                detached.release()
                return
        sock = AsgiSocket(websocket, *setup)
        sock.opened()
        self._open(sock)
        await sock.run()
