"""Types shared by callers, hosts and the wire: events and their kinds.

An :class:`Event` is one thing delivered to one object: an HTTP request for its ``fetch``
an RPC call, a WebSocket message, an alarm. On the wire it is an ``EVENT`` frame (see
:mod:`actors._frames`); its payload is one of the records of :mod:`actors._payloads`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class EventKind(IntEnum):
    FETCH = 0
    """``FetchRequest``: an HTTP request (or a WebSocket upgrade) for ``fetch``."""
    RPC = 1
    """``RpcCall``: a call of a public method."""
    ALARM = 2
    """``AlarmRun``: sent by a host to itself."""
    CONTROL = 3
    """``Control``: test and inspection hooks."""
    WS_MESSAGE = 4
    """``SocketMessage``: a client sent a text (str) or binary (bytes) message."""
    WS_CLOSE = 5
    """``SocketClose``: the socket closed."""
    WS_ERROR = 6
    """``SocketError``: the socket failed (other than by closing)."""


@dataclass(slots=True)
class Event:
    """One event for one object.

    ``caller`` and ``seq`` order a caller's events (the host runs them in ``seq`` order);
    ``chain`` names the call chain the event belongs to, so a call that comes back to an
    object busy in the same chain is let in.
    """

    binding: str
    object_hex: str
    name: str | None
    chain: str
    kind: EventKind
    payload: Any
    caller: str = ""
    seq: int = 0
    trace: Any = None
    """Trace context (a ``traceparent`` map) while tracing; the host's span once admitted."""
    streams: Any = None
    """A FETCH event's bodies that stream (:mod:`actors._streams`): the caller's
    ``CallerStreams``, the host's ``HostStreams`` once its transport has them; never encoded
    (they travel in stream frames)."""
