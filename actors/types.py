"""Types shared by callers, hosts and the wire: events and their kinds.

An :class:`Event` is one thing delivered to one object: an HTTP request for its ``fetch``
or an RPC call. On the wire it is a msgpack array (see :mod:`actors._wire`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class EventKind(IntEnum):
    FETCH = 0
    RPC = 1
    ALARM = 2
    """Sent by a host to itself: ``[retry_count, mode]``, mode "due", "now" or "drop"."""
    CONTROL = 3
    """Test and inspection hooks: ``[operation, *arguments]`` (see :mod:`actors._host`)."""
    WS_MESSAGE = 4
    """``[sid, message]``: a client sent a text (str) or binary (bytes) message."""
    WS_CLOSE = 5
    """``[sid, code, reason, was_clean]``: the socket closed."""
    WS_ERROR = 6
    """``[sid, message]``: the socket failed (other than by closing)."""


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


# fetch payloads: [method, path, query_string, headers [[name, value], ...], body, upgrade?]
# fetch replies:  [status, headers [[name, value], ...], body, auto_response?]
# rpc payloads:   [method_name, encoded (args, kwargs)]
# rpc replies:    encoded result
