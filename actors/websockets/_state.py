"""A client socket's life in its gateway, as a state with checked transitions."""

from __future__ import annotations

from enum import Enum


class SocketStateError(RuntimeError):
    """A socket was asked to move to a state its life does not allow (a raydo bug)."""


class SocketState(Enum):
    """Where a client socket is in its life, in order.

    ``CONNECTING``: the object accepted the upgrade; the gateway is accepting the client.
    ``OPEN``: messages flow both ways.
    ``CLOSING``: a close is on its way to the client (the object's, or the gateway's cutting
    off a client that is too slow or sent too much); nothing more is sent.
    ``CLOSED``: the connection is gone and the object was told why, once.
    """

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"

    def check(self, to: SocketState) -> SocketState:
        """``to``, if this state may become it; else :class:`SocketStateError`."""
        if to not in _NEXT[self]:
            raise SocketStateError(f"a {self.value} socket cannot become {to.value}")
        return to


_NEXT: dict[SocketState, frozenset[SocketState]] = {
    # A client may go before it is accepted, or between its messages: CLOSED from anywhere.
    SocketState.CONNECTING: frozenset({SocketState.OPEN, SocketState.CLOSED}),
    SocketState.OPEN: frozenset({SocketState.CLOSING, SocketState.CLOSED}),
    SocketState.CLOSING: frozenset({SocketState.CLOSED}),
    SocketState.CLOSED: frozenset(),
}
