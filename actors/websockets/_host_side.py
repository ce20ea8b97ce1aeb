"""A host's one collaborator for WebSockets: its links to gateways, its objects' sockets,
and the socket events it runs.

The host holds one (``Host.sockets``) and has no socket methods of its own; in order of an
event's life:

1. the transports call :meth:`attach_gateway`, :meth:`announce_sockets` and
   :meth:`detach_gateway` on it directly;
2. a new object's sockets come from :meth:`object_sockets`, which binds their pushes to
   :meth:`push`;
3. a ``FETCH`` with an upgrade: :meth:`prepare_upgrade` before ``fetch`` runs,
   :meth:`answer_upgrade` on its reply;
4. ``WS_MESSAGE``, ``WS_CLOSE`` and ``WS_ERROR`` run through :meth:`run_event`;
5. a reset object's sockets close through :meth:`close_all`; a gateway that never comes
   back makes each of its sockets a ``WS_CLOSE`` (1006) the host delivers to itself;
6. :meth:`stop` at shutdown.

With a socket index (:mod:`actors._socket_index`), :meth:`start` reads the sockets the host's
objects had before it started (a crash, a restart) and gives their gateways a grace period to
connect; an accepted socket enters the index before its commit, a closed one leaves it after.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from .._payloads import (
    ClosePush,
    FetchReply,
    FetchRequest,
    Push,
    SendPush,
    SocketClose,
    SocketError,
    SocketMessage,
)
from .._socket_index import IndexedSocket, SocketIndex
from ..types import Event, EventKind
from ._links import GatewayLinks, Writer
from ._object_view import UPGRADE_SCOPE_KEY, ObjectSockets, WebSocket

if TYPE_CHECKING:
    from raydo.storage import StorageCore
    from raydo.storage.limits import Limits

log = logging.getLogger("raydo.host")

LOST_REASON = "the gateway holding this WebSocket went away"


class HostSockets:
    """The WebSockets of one host's objects.

    ``deliver_local`` queues an event the host makes itself; ``new_chain`` gives such an
    event its own call chain. ``index`` (with the host's label, ``host``) is the binding's
    socket index; without one, sockets are known only while the host runs.
    """

    def __init__(
        self,
        binding: str,
        limits: Limits,
        deliver_local: Callable[[Event], asyncio.Future[Any]],
        new_chain: Callable[[], str],
        *,
        index: SocketIndex | None = None,
        host: str = "",
    ) -> None:
        self._binding = binding
        self._limits = limits
        self._deliver_local = deliver_local
        self._new_chain = new_chain
        self._index = index
        self._host = host
        self.links = GatewayLinks(self._socket_lost)
        self.sends = 0
        """Messages pushed to client sockets (one per socket a broadcast reaches)."""

    def start(self, grace: float | None = None) -> None:
        """Once, inside the event loop, as the host starts: every socket the index holds for
        this host waits ``grace`` seconds (``RESTART_GRACE_S``) for its gateway, or is lost
        (``WS_CLOSE`` 1006)."""
        if self._index is not None:
            self.links.restore(self._index.of_host(self._host), grace)

    # ---- the transports ------------------------------------------------------------------

    def attach_gateway(self, gateway: str, writer: Writer) -> None:
        """A gateway process connected: pushes for its sockets go to ``writer``."""
        self.links.attach(gateway, writer)

    def announce_sockets(self, gateway: str, sockets: list[list[str]]) -> None:
        """A (re)connected gateway says which sockets of this host's objects it holds."""
        self.links.announce(gateway, sockets)

    def detach_gateway(self, gateway: str, writer: Writer) -> None:
        """A gateway's connection closed (see :class:`GatewayLinks`)."""
        self.links.detach(gateway, writer)

    def push(self, gateway: str, push: Push) -> None:
        """Send a push to the gateway holding its sockets; held briefly while it reconnects."""
        if type(push) is SendPush:
            self.sends += len(push.sids)
        elif type(push) is ClosePush:  # pushes leave after the commit that forgot them
            self._unindex(push.sids)
        self.links.deliver(gateway, push)

    # ---- the objects ---------------------------------------------------------------------

    def object_sockets(self, storage: StorageCore, object_hex: str) -> ObjectSockets:
        """The sockets of an object being activated, their pushes bound to this host."""
        return ObjectSockets(storage, self._limits, self.push, object_hex=object_hex)

    def prepare_upgrade(self, request: Request, fetch: FetchRequest) -> None:
        """Before ``fetch`` runs: an upgrade's request carries its socket, so
        ``ctx.accept_websocket(request)`` can accept it."""
        if fetch.upgrade is not None:
            request.scope[UPGRADE_SCOPE_KEY] = (fetch.upgrade.sid, fetch.upgrade.gateway)

    def answer_upgrade(
        self, sockets: ObjectSockets, object_hex: str, fetch: FetchRequest, reply: FetchReply
    ) -> FetchReply:
        """After ``fetch`` answered an upgrade: a 101 must have accepted the socket (its
        gateway now holds it, and the reply carries the auto-response pair); any other answer
        forgets a socket the handler accepted, since nobody will hold it."""
        upgrade = fetch.upgrade
        if upgrade is None:
            return reply
        if reply.status != 101:
            if sockets.record(upgrade.sid) is not None:
                sockets.forget(upgrade.sid)
            return reply
        if sockets.record(upgrade.sid) is None:
            raise TypeError("fetch answered 101 without ctx.accept_websocket(request)")
        if self._index is not None:  # ahead of the commit that records the socket
            socket = IndexedSocket(object_hex, upgrade.sid, upgrade.gateway)
            self._index.opened(self._host, socket)
        self.links.holds(upgrade.gateway, object_hex, upgrade.sid)
        return reply._replace(auto_response=sockets.auto_response)

    async def run_event(
        self,
        instance_of: Callable[[], Any],
        sockets: ObjectSockets,
        object_hex: str,
        event: SocketMessage | SocketClose | SocketError,
        commit: Callable[[], object],
    ) -> None:
        """Run a socket event's handler on the object (``instance_of`` activates it). A close
        forgets the socket for good and commits that first, whatever the handler does; the
        handler still sees what the socket was (its tags and attachment)."""
        record = sockets.record(event.sid)
        if record is None:
            if isinstance(event, SocketClose):  # an index entry its record outlived no more
                self._unindex([event.sid])
            return  # closed already (by the object, or a duplicate close)
        instance = instance_of()
        ws = WebSocket(sockets, event.sid)
        if isinstance(event, SocketMessage):
            handler = getattr(instance, "web_socket_message", None)
            if handler is not None:
                await handler(ws, event.message)
        elif isinstance(event, SocketClose):
            sockets.forget(event.sid)
            commit()
            self._unindex([event.sid])
            self.links.released(record.gateway, object_hex, event.sid)
            handler = getattr(instance, "web_socket_close", None)
            if handler is not None:
                closed = WebSocket(sockets, event.sid, closed=record)
                await handler(closed, event.code, event.reason, event.was_clean)
        else:
            handler = getattr(instance, "web_socket_error", None)
            if handler is not None:
                await handler(ws, RuntimeError(event.message))

    def close_all(
        self,
        object_id: object,
        sockets: ObjectSockets,
        code: int,
        reason: str,
        commit: Callable[[], object],
        rollback: Callable[[], object],
    ) -> None:
        """Close every socket of a reset object (the close leaves after the commit); a
        failure is logged and rolled back."""
        try:
            for ws in sockets.handles():
                sockets.queue_close(ws.sid, code, reason)
            commit()
        except Exception:
            log.exception("closing the sockets of %s failed", object_id)
            sockets.discard()
            rollback()

    def _socket_lost(self, object_hex: str, sid: str) -> None:
        close = SocketClose(sid, 1006, LOST_REASON, False)
        self._deliver_local(
            Event(
                self._binding,
                object_hex,
                None,
                self._new_chain(),
                EventKind.WS_CLOSE,
                close.encode(),
            )
        )

    def _unindex(self, sids: list[str]) -> None:
        if self._index is None:
            return
        try:
            self._index.closed(sids)
        except sqlite3.Error:  # a stale entry is dropped when the host next starts
            log.exception("could not drop closed WebSockets from the socket index")

    def stop(self) -> None:
        """Stop the gateways' grace timers and close the index (the host is closing)."""
        self.links.stop()
        if self._index is not None:
            self._index.close()
