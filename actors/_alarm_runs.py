"""A host's alarms: the binding's index and the host's timer, firing alarm events and
retrying failed ones (2, 4, 8 ... s, six times; see :mod:`actors._alarms`)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._alarms import MAX_RETRIES, AlarmIndex, AlarmTimer, backoff_s, now_ms
from ._errors import ObjectReset, Overloaded
from ._metrics import HostMetrics
from .types import Event, EventKind

log = logging.getLogger("raydo.host")

MakeEvent = Callable[[str, str | None, EventKind, list[Any]], Event]
Admit = Callable[[Event, asyncio.Future[Any]], None]


class HostAlarms:
    """When the objects of one host are due, and what happens when they are.

    The output gate tells it what each commit did to an object's alarm (:meth:`ahead` before
    the commit, :meth:`settle` after); the timer calls :meth:`fire`, which admits an alarm
    event; its outcome decides a retry. :meth:`stop` stops the timer and waits for it.
    """

    def __init__(
        self,
        index_path: Path,
        host_label: str,
        make_event: MakeEvent,
        admit: Admit,
        metrics: HostMetrics,
    ) -> None:
        self.index = AlarmIndex(index_path)
        self.timer = AlarmTimer(self.fire)
        self._host = host_label
        self._make_event = make_event
        self._admit = admit
        self._metrics = metrics
        self._closed = False

    def start(self) -> None:
        """Arm every alarm the index holds for this host (once, inside the event loop)."""
        for object_hex, name, due in self.index.of_host(self._host):
            self.timer.arm(object_hex, name, due)

    def ahead(self, object_hex: str, name: str | None, due: int) -> None:
        """Before a commit that set an alarm: the index fires no later than ``due``."""
        self.index.ahead(self._host, object_hex, name, due)

    def settle(self, object_hex: str, name: str | None, due: int | None) -> None:
        """After the commit: the index and the timer learn the exact alarm, or none."""
        self.index.settle(self._host, object_hex, name, due)
        if due is None:
            self.timer.disarm(object_hex)
        else:
            self.timer.arm(object_hex, name, due)

    def arm(self, object_hex: str, name: str | None, due: int, retries: int = 0) -> None:
        self.timer.arm(object_hex, name, due, retries)

    def forget(self, object_hex: str) -> None:
        """The object has no alarm (found when one fired): drop it from the index."""
        self.index.settle(self._host, object_hex, None, None)

    def fire(self, object_hex: str, name: str | None, retries: int, mode: str = "due") -> None:
        """Queue an alarm event for an object (the timer calls this when one is due)."""
        event = self._make_event(object_hex, name, EventKind.ALARM, [retries, mode])
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(functools.partial(self._done, object_hex, name, retries))
        self._admit(event, future)

    def _done(
        self, object_hex: str, name: str | None, retries: int, future: asyncio.Future[Any]
    ) -> None:
        error = future.exception() if not future.cancelled() else None
        if error is None or self._closed:
            return
        if isinstance(error, Overloaded):  # the alarm never ran: try again soon, uncounted
            self.timer.arm(object_hex, name, now_ms() + 1000, retries)
            return
        aborted = isinstance(error, ObjectReset) and not getattr(error, "retry_alarm", True)
        log.warning("alarm of %s… failed (attempt %d): %s", object_hex[:16], retries + 1, error)
        if retries >= MAX_RETRIES or aborted:
            self.fire(object_hex, name, retries, "drop")
        else:
            self._metrics.alarm_retries += 1
            due = now_ms() + int(backoff_s(retries + 1) * 1000)
            self.timer.arm(object_hex, name, due, retries + 1)

    async def stop(self) -> None:
        """Schedule nothing more: stop the timer and wait until its task has ended."""
        self._closed = True
        await self.timer.close()

    def close(self) -> None:
        """Close the index file (after :meth:`stop`, once no commit can run)."""
        self.index.close()
