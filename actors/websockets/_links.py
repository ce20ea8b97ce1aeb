"""A host's links to the gateway processes that hold its objects' client sockets.

Pushes (sends, closes) go to the gateway holding each socket. A gateway that disconnects has
a grace period to come back (its pushes wait, bounded); one that does not is taken as gone,
and each of its sockets is reported lost, so its object gets ``web_socket_close`` (1006).

The same holds after a crash: a host that starts is told the sockets its objects had
(:meth:`GatewayLinks.restore`, from the socket index), and each gateway among them has
``RESTART_GRACE_S`` to connect. A gateway that connects says which sockets it holds
(:meth:`GatewayLinks.announce`); those it had and no longer holds are lost too.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .._payloads import ClosePush, Push

GATEWAY_GRACE_S = 3.0
RESTART_GRACE_S = 10.0
"""After a host starts, how long the gateways its objects' sockets name have to connect:
longer than a disconnect's grace, since gateways reconnect only once the host is up."""
UNDELIVERED_PUSHES = 10_000

Writer = Callable[[list[Any]], None]
"""Writes an encoded push to one gateway's connection."""


class GatewayLinks:
    """Which gateways are connected, and which sockets of this host's objects each holds."""

    def __init__(self, socket_lost: Callable[[str, str], None]) -> None:
        self._socket_lost = socket_lost
        self._writers: dict[str, Writer] = {}
        self._sockets: dict[str, set[tuple[str, str]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._undelivered: dict[str, deque[list[Any]]] = {}

    def attach(self, gateway: str, writer: Writer) -> None:
        self._writers[gateway] = writer
        timer = self._timers.pop(gateway, None)
        if timer is not None:
            timer.cancel()
        for frame in self._undelivered.pop(gateway, ()):
            writer(frame)

    def restore(self, sockets: Iterable[tuple[str, str, str]], grace: float | None = None) -> None:
        """At start: ``(object_hex, sid, gateway)`` of every socket this host's objects had.
        A gateway that is not connected within ``grace`` seconds (``RESTART_GRACE_S``) is
        gone, with its sockets."""
        grace = RESTART_GRACE_S if grace is None else grace
        for object_hex, sid, gateway in sockets:
            self._sockets.setdefault(gateway, set()).add((object_hex, sid))
        loop = asyncio.get_running_loop()
        for gateway in self._sockets:
            if gateway not in self._writers and gateway not in self._timers:
                self._timers[gateway] = loop.call_later(grace, self._lost, gateway)

    def announce(self, gateway: str, sockets: list[list[str]]) -> None:
        """A gateway that (re)connected holds exactly ``sockets`` (``[object_hex, sid]``) of
        this host's objects: those it held before and does not now are lost."""
        held = {(str(object_hex), str(sid)) for object_hex, sid in sockets}
        gone = self._sockets.get(gateway, set()) - held
        self._sockets[gateway] = held
        for object_hex, sid in sorted(gone):
            self._socket_lost(object_hex, sid)

    def holds(self, gateway: str, object_hex: str, sid: str) -> None:
        self._sockets.setdefault(gateway, set()).add((object_hex, sid))

    def released(self, gateway: str, object_hex: str, sid: str) -> None:
        self._sockets.get(gateway, set()).discard((object_hex, sid))

    def detach(self, gateway: str, writer: Writer) -> None:
        """The connection closed: if the gateway does not come back within the grace period,
        its sockets are gone."""
        if self._writers.get(gateway) is writer:
            del self._writers[gateway]
            self._timers[gateway] = asyncio.get_running_loop().call_later(
                GATEWAY_GRACE_S, self._lost, gateway
            )

    def _lost(self, gateway: str) -> None:
        self._timers.pop(gateway, None)
        self._undelivered.pop(gateway, None)
        for object_hex, sid in sorted(self._sockets.pop(gateway, set())):
            self._socket_lost(object_hex, sid)

    def deliver(self, gateway: str, push: Push) -> None:
        """Write ``push`` (encoded, once) to ``gateway``, or hold it (bounded) while the
        gateway reconnects."""
        if type(push) is ClosePush:  # the object closed these sockets itself
            for sid in push.sids:
                for entry in [e for e in self._sockets.get(gateway, ()) if e[1] == sid]:
                    self._sockets[gateway].discard(entry)
        frame = push.encode()
        writer = self._writers.get(gateway)
        if writer is not None:
            writer(frame)
            return
        held = self._undelivered.get(gateway)
        if held is None:
            held = self._undelivered[gateway] = deque(maxlen=UNDELIVERED_PUSHES)
            if gateway not in self._timers:  # a gateway that never comes back expires too
                self._timers[gateway] = asyncio.get_running_loop().call_later(
                    GATEWAY_GRACE_S, self._lost, gateway
                )
        held.append(frame)

    def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
