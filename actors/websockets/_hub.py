"""The client sockets of one gateway process, and the pushes from hosts that reach them.

Each socket belongs to one object on one host, recorded when its id is reserved. A push is
applied to a socket only when it came over that host's link and names that object: code in
one object (or a forged frame on any host's link) cannot reach another object's client. A
refused push is dropped, counted (``refused_pushes``) and logged, rate-limited.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket

from raydo.storage.limits import Limits

from .._metrics import SocketCounts
from .._payloads import ClosePush, Push, SendPush, SocketClose, decode_push
from .._spec import HostKey
from .._throttled_log import ThrottledWarning
from ._asgi import AsgiSocket
from ._client import ClientSocket, SendEvent, report_close
from ._detached import DetachedSocket
from .detach import DETACH_EXTENSION

log = logging.getLogger("raydo.websockets")


class SocketHub:
    """Every client socket of this gateway process, by socket id.

    A socket id is reserved, with the host and object it belongs to, when its upgrade is
    sent (:meth:`new_sid`); pushes for it that arrive before the client is open (a greeting
    sent by the accepting event) wait, bounded, and reach it once it is. Pushes come in
    through :meth:`pushes_from`, which knows the host they came from, and reach only the
    sockets of that host's pushing object.
    """

    def __init__(self, limits: Limits) -> None:
        self.gateway_id = os.urandom(8).hex()
        self.limits = limits
        self._sockets: dict[str, ClientSocket] = {}
        self._owners: dict[str, tuple[HostKey, str]] = {}  # sid -> (host, object_hex)
        self._waiting: dict[str, list[Push]] = {}
        self._ids = itertools.count()
        self._refused = ThrottledWarning(log)
        self.counts: dict[str, SocketCounts] = {}  # per binding, for the metrics endpoint

    @property
    def refused_pushes(self) -> int:
        """Pushes (or the part of a push for one socket) dropped because the socket belongs
        to another object or another host."""
        return self._refused.count

    def new_sid(self, key: HostKey, object_hex: str) -> str:
        """A socket id for an upgrade about to be sent to object ``object_hex`` on host
        ``key``: only that object, over that host's link, may push to it."""
        sid = f"{self.gateway_id}.{next(self._ids)}"
        self._owners[sid] = (key, object_hex)
        self._waiting[sid] = []
        return sid

    def abandon(self, sid: str) -> None:
        """The upgrade was refused or failed, or the client left before it was accepted:
        drop what waited for it."""
        self._waiting.pop(sid, None)
        if sid not in self._sockets:
            self._owners.pop(sid, None)

    def open_by_binding(self) -> dict[str, int]:
        """How many client sockets are open, per binding (for the metrics endpoint)."""
        found: dict[str, int] = {}
        for sock in list(self._sockets.values()):
            found[sock.key.binding] = found.get(sock.key.binding, 0) + 1
        return found

    def sockets_on(self, key: HostKey) -> list[list[str]]:
        """``[object_hex, sid]`` of every socket whose object lives on host ``key``."""
        return [[s.object_hex, s.sid] for s in self._sockets.values() if s.key == key]

    def pushes_from(self, key: HostKey) -> Callable[[list[Any]], None]:
        """What applies the pushes that arrive over host ``key``'s link (or, in process,
        from that host itself)."""

        def apply(raw: list[Any]) -> None:
            self.push(key, raw)

        return apply

    def push(self, sender: HostKey, raw: list[Any]) -> None:
        """Apply a push (an encoded :mod:`actors._payloads` push) that host ``sender`` sent,
        to those of its sockets that belong to the pushing object on ``sender``."""
        push = decode_push(raw)
        owner = (sender, push.object_hex)
        for sid in push.sids:
            if self._owners.get(sid) != owner:
                self._refused.warn(
                    "dropped a push from %s (object %.16s) to WebSocket %.40s, which is not"
                    " that object's",
                    sender.label,
                    push.object_hex,
                    sid,
                )
                continue
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
            self.push(sock.key, push.encode())

    def _forget(self, sid: str) -> None:
        self._sockets.pop(sid, None)
        self._owners.pop(sid, None)

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
