"""One object's mailbox: the events waiting for their turn, bounded in number and in time.

Two bounds, both answered with :class:`Overloaded` (do not retry at once):

- **How many** (``mailbox_limit``): :meth:`Mailbox.admit` refuses an event past it at once.
- **How long** (``queue_wait_seconds``): an event that has not started within it is taken out
  of the mailbox and its caller answered; it never runs later. One timer per mailbox is armed
  for the oldest event's deadline (every event of a mailbox waits the same bound, so the oldest
  is always the first due), and re-armed for the next one when it fires.

The mailbox starts no task: its timer is a loop callback, cancelled by :meth:`Mailbox.close`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from ._errors import Overloaded
from .types import Event

Entry = tuple[Event, "asyncio.Future[Any]"]


class Mailbox:
    """The waiting events of one object, in arrival order.

    ``label`` names the object in errors; ``on_refused`` is called once for every event
    refused or expired (the host counts them as overloads).
    """

    __slots__ = ("_entries", "_hint", "_label", "_limit", "_on_refused", "_timer", "_wait")

    def __init__(
        self,
        label: str,
        limit: int,
        wait_seconds: float,
        on_refused: Callable[[], None],
        hint: str = "",
    ) -> None:
        self._label = label
        self._hint = hint  # said when an event waited too long (what may have held it)
        self._limit = limit
        self._wait = wait_seconds
        self._on_refused = on_refused
        # (deadline on the loop's clock, event, future), oldest first.
        self._entries: deque[tuple[float, Event, asyncio.Future[Any]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def admit(self, event: Event, future: asyncio.Future[Any]) -> bool:
        """Queue the event, or (False) answer its future with :class:`Overloaded` because the
        mailbox is full."""
        if len(self._entries) >= self._limit:
            self._refuse(
                future,
                f"object {self._label} is overloaded: {len(self._entries)} events queued"
                f" (mailbox_limit {self._limit})",
            )
            return False
        deadline = asyncio.get_running_loop().time() + self._wait
        self._entries.append((deadline, event, future))
        if self._timer is None:
            self._arm()
        return True

    def popleft(self) -> Entry:
        """The oldest event still waiting (its turn starts now)."""
        _, event, future = self._entries.popleft()
        if not self._entries:
            self._disarm()
        return event, future

    def close(self) -> list[Entry]:
        """Stop the timer; the events still waiting, for the owner to answer."""
        self._disarm()
        left = [(event, future) for _, event, future in self._entries]
        self._entries.clear()
        return left

    # ---- the deadline -------------------------------------------------------------------

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_at(self._entries[0][0], self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        entries = self._entries
        while entries and entries[0][0] <= now:
            _, _, future = entries.popleft()
            self._refuse(
                future,
                f"object {self._label} is overloaded: the event waited {self._wait:g} s in its"
                f" mailbox without starting and was dropped (queue_wait_seconds {self._wait:g})"
                + self._hint,
            )
        if entries:
            self._arm()

    def _refuse(self, future: asyncio.Future[Any], message: str) -> None:
        self._on_refused()
        if not future.done():
            future.set_exception(Overloaded(message))
