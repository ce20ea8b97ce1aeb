"""Errors a caller of an object can see, and how each crosses the wire.

Every error says whether retrying is safe (``retryable``): an event that never reached its
object may be sent again; one that may have run must not be, unless it is idempotent.
"""

from __future__ import annotations

from raydo.storage.errors import StorageFull
from raydo.storage.limits import LimitExceeded


class RaydoError(Exception):
    """Base of the errors raised to callers of objects."""

    code = "error"
    retryable = False
    overloaded = False
    remote = False

    def to_wire(self) -> list[object]:
        return [self.code, type(self).__name__, str(self), self.retryable]


class ObjectError(RaydoError):
    """The object raised; ``type_name`` and the message are the original exception's.

    The event's uncommitted writes were rolled back and the instance was dropped.
    """

    code = "object"
    remote = True

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message

    def to_wire(self) -> list[object]:
        return [self.code, self.type_name, self.message, False]


class Overloaded(RaydoError):
    """The object's mailbox is full; the event was not queued. Do not retry at once."""

    code = "overloaded"
    overloaded = True


class ObjectReset(RaydoError):
    """The object was reset (``ctx.abort``, or its event passed a time limit) while handling
    the event; its in-memory state is gone. A stub that saw this stays broken: get a new stub
    to reach the object again.

    ``limit`` names the time limit the event passed (``cpu_ms``, ``event_seconds``,
    ``host_stall_seconds``), None for a reset the object asked for.
    """

    code = "reset"
    retry_alarm = True

    def __init__(self, message: str, *, limit: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit

    def to_wire(self) -> list[object]:
        # The type name's place carries the limit (as RemoteLimitExceeded's does).
        return [self.code, self.limit or type(self).__name__, str(self), False]


class CallRefused(RaydoError):
    """The call was refused before it ran: no such public method, a reserved name, bad arguments."""

    code = "refused"


class HostUnavailable(RaydoError):
    """The object's host could not be reached or died.

    ``retryable`` is True when the event surely never ran (it was not sent), and False when the
    host died with the event in flight, so it may or may not have run.
    """

    code = "unavailable"

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class RemoteLimitExceeded(RaydoError, LimitExceeded):
    """A limit was breached inside the object (``.limit`` names it); nothing was written.

    Both a :class:`RaydoError` and a :class:`storage.LimitExceeded`, so either catches it.
    """

    code = "limit"

    def __init__(self, limit: str, message: str) -> None:
        Exception.__init__(self, message)
        self.limit = limit

    def to_wire(self) -> list[object]:
        return [self.code, self.limit, str(self), False]


class RemoteStorageFull(RaydoError, StorageFull):
    """The disk holding the object's storage was full: the event's writes were rolled back.

    Not a limit: it passes once space is freed, so callers see it as "try later" (HTTP 503
    with ``Retry-After``). ``retryable`` is True when nothing of the event had left the
    object (it had committed nothing and called no other object), so sending it again cannot
    do anything twice. Both a :class:`RaydoError` and a :class:`storage.StorageFull`.
    """

    code = "storage_full"

    def __init__(self, message: str, *, retryable: bool) -> None:
        Exception.__init__(self, message)
        self.retryable = retryable


class StreamBroken(RaydoError):
    """A body streaming through an object stopped before its end: the other side went away
    (a client left, an object's ``fetch`` returned without reading the rest), its connection
    was lost, or its peer broke the stream's rules (the message says which)."""

    code = "stream"


def error_from_wire(wire: list[object]) -> RaydoError:
    """Rebuild the error a host sent."""
    code, type_name, message, retryable = wire
    text = str(message)
    if code == RemoteLimitExceeded.code:
        return RemoteLimitExceeded(str(type_name), text)
    if code == ObjectError.code:
        return ObjectError(str(type_name), text)
    if code == HostUnavailable.code:
        return HostUnavailable(text, retryable=bool(retryable))
    if code == RemoteStorageFull.code:
        return RemoteStorageFull(text, retryable=bool(retryable))
    if code == ObjectReset.code:
        limit = None if type_name == ObjectReset.__name__ else str(type_name)
        return ObjectReset(text, limit=limit)
    for cls in (Overloaded, CallRefused, StreamBroken):
        if code == cls.code:
            return cls(text)
    return RaydoError(f"{type_name}: {text}")


class DeployError(RuntimeError):
    """``raydo deploy`` could not bring the app up on the cluster (its environment could not
    be set up on a node, or a host did not start); the message says where and why."""
