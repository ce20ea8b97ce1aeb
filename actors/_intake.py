"""Intake: per-caller order. Every event carries ``(caller, seq)``; a caller stamps its events
with :class:`CallerOrder`, and a host's :class:`Intake` releases each caller's events in
``seq`` order, whatever order the transport delivered them in (async Ray actors reorder
calls). These two classes are the only code that writes or reads those numbers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from ._errors import CallRefused, HostUnavailable
from .types import Event

MAX_HELD_PER_CALLER = 100_000
"""Events one caller may have ahead of a gap in its sequence before more are refused."""

Admit = Callable[[Event, asyncio.Future[Any]], None]


class CallerOrder:
    """One caller's stamp: a caller id unique across processes, and a sequence per host."""

    __slots__ = ("_next", "caller")

    def __init__(self, caller: str | None = None) -> None:
        self.caller = os.urandom(8).hex() if caller is None else caller
        self._next: dict[Any, int] = {}

    def stamp(self, host: Any, event: Event) -> Event:
        """Give ``event`` this caller's id and its next number towards ``host``."""
        seq = self._next.get(host, 0)
        self._next[host] = seq + 1
        event.caller = self.caller
        event.seq = seq
        return event


class _Caller:
    __slots__ = ("expected", "held")

    def __init__(self) -> None:
        self.expected = 0
        self.held: dict[int, tuple[Event, asyncio.Future[Any]]] = {}


class Intake:
    """A host's intake: hands each caller's events to ``admit`` in ``seq`` order."""

    __slots__ = ("_admit", "_callers")

    def __init__(self, admit: Admit) -> None:
        self._admit = admit
        self._callers: dict[str, _Caller] = {}

    def accept(self, event: Event, future: asyncio.Future[Any]) -> None:
        """Admit ``event`` now if it is its caller's next, with the held ones it unblocks;
        hold it if it is early; refuse a duplicate or an event far out of window."""
        caller = self._callers.get(event.caller)
        if caller is None:
            caller = self._callers[event.caller] = _Caller()
        if event.seq == caller.expected:
            caller.expected += 1
            self._admit(event, future)
            held = caller.held
            while held and caller.expected in held:
                held_event, held_future = held.pop(caller.expected)
                caller.expected += 1
                self._admit(held_event, held_future)
        elif (
            event.seq > caller.expected
            and event.seq not in caller.held  # a duplicate must not orphan the held event
            and len(caller.held) < MAX_HELD_PER_CALLER
        ):
            caller.held[event.seq] = (event, future)
        else:
            future.set_exception(
                CallRefused(f"event {event.seq} from this caller is a duplicate or out of window")
            )

    def forget(self, caller: str) -> None:
        """A caller's connection closed: forget its order state and fail its held events."""
        state = self._callers.pop(caller, None)
        if state:
            for _, future in state.held.values():
                if not future.done():
                    future.set_exception(HostUnavailable("caller went away", retryable=False))

    def close(self) -> None:
        """Fail every held event (the host is going away)."""
        for caller in list(self._callers):
            self.forget(caller)
