"""The turn an object is running, seen from code that runs inside it (stubs, ctx)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raydo.storage import StorageCore

    from ._ids import ObjectId


@dataclass(slots=True)
class Turn:
    """One event being handled: its call chain, its storage core, and how to commit its writes
    before output leaves (the core's commit, which runs the host's output gate)."""

    chain: str
    storage: StorageCore
    commit: Callable[[], asyncio.Future[None] | None]
    """Commit now (``storage.commit``); under group commit, a future for when that commit is
    durable (output waits for it), else None."""
    calls_out: int = 0
    """Calls to other objects this turn is waiting on: while one is, a call back into the
    object on the same chain is let in (A calls B, B calls A)."""
    ended: bool = False
    """Set when the event is over: a task it started that outlives it is not that turn."""
    left: bool = False
    """Something of the event has left the object: a commit (a call out commits first), so
    the event can no longer be sent again as if it never ran."""
    object_id: ObjectId | None = None
    """The object running it (log records carry it, see :mod:`actors._logs`)."""
    answer: Callable[[Any], None] | None = None
    """Give the event's caller its reply now, before the turn ends (the head of a streamed
    reply, whose body follows while the turn runs on); set for events that may stream."""
    stop: Callable[[str], None] | None = None
    """Gates mode: stop the event (waiting in an await) because its object was reset by
    another event; the message says why."""


current_turn: ContextVar[Turn | None] = ContextVar("raydo_current_turn", default=None)


def in_event() -> bool:
    """True in code running inside an object's event (not in a task that outlived it): a
    call made there leaves through that event's output gate."""
    turn = current_turn.get()
    return turn is not None and not turn.ended
