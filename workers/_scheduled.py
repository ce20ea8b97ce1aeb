"""The controller a Worker's ``scheduled(controller)`` handler is given (see
:mod:`workers._handlers`): raydo's cron controller under the platform's names."""

from __future__ import annotations

from typing import Any


class ScheduledEvent:
    """``cron`` (the expression that fired), ``scheduledTime`` (epoch milliseconds, UTC; also
    ``scheduled_time``), ``type`` (``"scheduled"``) and ``noRetry()``."""

    def __init__(self, controller: Any) -> None:
        self._controller = controller

    @property
    def cron(self) -> str:
        return str(self._controller.cron)

    @property
    def scheduledTime(self) -> int:
        return int(self._controller.scheduled_time)

    scheduled_time = scheduledTime

    @property
    def type(self) -> str:
        return "scheduled"

    def noRetry(self) -> None:
        """Accepted: raydo never retries a failed run."""
        self._controller.no_retry()

    no_retry = noRetry

    def __repr__(self) -> str:
        return f"ScheduledEvent(cron={self.cron!r}, scheduledTime={self.scheduledTime})"
