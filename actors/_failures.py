"""What the operator hears when an event fails: one log record per failed event.

The host calls :func:`log_event_failure` once for every exception that fails an event (the
handler's, the constructor's, a commit's), after the event's writes were rolled back. The
record goes to the ``raydo.events`` logger with the exception's traceback; its message names
the binding, the object's id and name and what the event was, so a text log says it all on
one line, and a JSON log has them as fields too (``binding``, ``object_id``, ``object_name``,
``event``; see :mod:`actors._logs`). Expected refusals (a limit breached, ``ctx.abort``) are
warnings; everything else is an error. A cancelled event (its host shutting down) is not a
failure of the object and is not logged here.
"""

from __future__ import annotations

import asyncio
import logging

from raydo.storage.limits import LimitExceeded

from ._ids import ObjectId
from ._payloads import FetchRequest, RpcCall
from .types import Event, EventKind

log = logging.getLogger("raydo.events")


def describe_event(event: Event) -> str:
    """A few words for what the event was: ``rpc increment``, ``fetch GET /path``, ``alarm``."""
    kind = event.kind.name.lower() if isinstance(event.kind, EventKind) else str(event.kind)
    try:
        if event.kind == EventKind.RPC:
            return f"{kind} {RpcCall.decode(event.payload).method}"
        if event.kind == EventKind.FETCH:
            fetch = FetchRequest.decode(event.payload)
            return f"{kind} {fetch.method} {fetch.path}"
    except (TypeError, ValueError):  # a malformed payload still gets its kind
        pass
    return kind


def log_event_failure(
    object_id: ObjectId, event: Event, error: BaseException, *, expected: bool = False
) -> None:
    """Log that ``error`` failed ``event`` of ``object_id``, with its traceback (once).

    ``expected`` marks a refusal the object chose (a reset it asked for); limits breached are
    expected too. Those are warnings, the rest errors.
    """
    if isinstance(error, asyncio.CancelledError):
        return
    what = describe_event(event)
    level = logging.WARNING if expected or isinstance(error, LimitExceeded) else logging.ERROR
    name = "" if object_id.name is None else f" (name {object_id.name!r})"
    log.log(
        level,
        "%s event of %s object %s%s failed: %s: %s",
        what,
        object_id.namespace,
        object_id.hex,
        name,
        type(error).__name__,
        error,
        exc_info=(type(error), error, error.__traceback__),
        extra={
            "fields": {
                "binding": object_id.namespace,
                "object_id": object_id.hex,
                "object_name": object_id.name,
                "event": what,
                "error": type(error).__name__,
            }
        },
    )
