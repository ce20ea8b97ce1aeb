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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from .._payloads import (
    FetchReply,
    FetchRequest,
    SendPush,
    SocketClose,
    SocketError,
    SocketMessage,
    decode_push,
)
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
    event its own call chain.
    """

    def __init__(
        self,
        binding: str,
        limits: Limits,
        deliver_local: Callable[[Event], asyncio.Future[Any]],
        new_chain: Callable[[], str],
    ) -> None:
        self._binding = binding
        self._limits = limits
        self._deliver_local = deliver_local
        self._new_chain = new_chain
        self.links = GatewayLinks(self._socket_lost)
        self.sends = 0
        """Messages pushed to client sockets (one per socket a broadcast reaches)."""

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

    def push(self, gateway: str, frame: list[Any]) -> None:
        """Send an encoded push to a gateway; held briefly while it reconnects."""
        push = decode_push(frame)
        if isinstance(push, SendPush):
            self.sends += len(push.sids)
        self.links.deliver(gateway, push, frame)

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

    def stop(self) -> None:
        """Stop the gateways' grace timers (the host is closing)."""
        self.links.stop()
