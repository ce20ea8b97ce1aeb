"""What a queue consumer's handler receives: a :class:`MessageBatch` of :class:`Message`.

A handler decides each message's fate with ``msg.ack()`` or ``msg.retry(delay_seconds=)``, or
the whole batch's with ``batch.ack_all()`` / ``batch.retry_all(delay_seconds=)``. A message's
own call wins over the batch's, and the first call is final. When the handler returns, every
undecided message is acknowledged; when it raises, every undecided one is retried (decisions
made before it raised are kept). Each decision is on disk when its call returns (see
``_decisions``): if the handler's host dies, decided messages keep their decision and only the
undecided ones are delivered again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Record = Callable[[str, tuple[str, float | None]], None]
"""Where a first decision goes as it is made: ``record(message id or "*", decision)``."""

MAX_DELAY_SECONDS = 43_200
"""The longest delay of a send or a retry: 12 hours, as on Cloudflare."""


def check_delay(delay_seconds: object, what: str = "delay_seconds") -> float:
    """``delay_seconds`` as a float from 0 to 12 hours, or a ValueError/TypeError saying why."""
    if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {type(delay_seconds).__name__}")
    if not math.isfinite(delay_seconds) or not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"{what} must be from 0 to {MAX_DELAY_SECONDS} (12 hours)")
    return float(delay_seconds)


@dataclass
class Message:
    """One message of a batch: its ``id``, ``body``, ``timestamp`` (when it was sent, UTC)
    and ``attempts`` (1 on its first delivery)."""

    id: str
    body: Any
    timestamp: datetime
    attempts: int
    _decision: tuple[str, float | None] | None = field(default=None, repr=False)
    _record: Record | None = field(default=None, repr=False)

    def ack(self) -> None:
        """Mark the message delivered: it is deleted once the handler is done (and is not
        delivered again even if the handler's host dies before then)."""
        self._decide(("ack", None))

    def retry(self, *, delay_seconds: float | None = None) -> None:
        """Deliver the message again later: after ``delay_seconds`` (0 to 43,200), or after
        the consumer's backoff when not given. Past ``max_retries`` it is dead-lettered."""
        self._decide(("retry", None if delay_seconds is None else check_delay(delay_seconds)))

    def _decide(self, decision: tuple[str, float | None]) -> None:
        if self._decision is None:
            self._decision = decision
            if self._record is not None:
                self._record(self.id, decision)


@dataclass
class MessageBatch:
    """Messages of one queue, in the order they became visible (send order, unless delayed
    or retried)."""

    queue: str
    messages: list[Message]
    _decision: tuple[str, float | None] | None = field(default=None, repr=False)
    _record: Record | None = field(default=None, repr=False)

    def ack_all(self) -> None:
        """Acknowledge every message that has no decision of its own."""
        self._decide(("ack", None))

    def retry_all(self, *, delay_seconds: float | None = None) -> None:
        """Retry every message that has no decision of its own (see :meth:`Message.retry`)."""
        self._decide(("retry", None if delay_seconds is None else check_delay(delay_seconds)))

    def _decide(self, decision: tuple[str, float | None]) -> None:
        if self._decision is None:
            self._decision = decision
            if self._record is not None:
                self._record("*", decision)

    def outcome(self, failed: bool) -> tuple[list[str], list[tuple[str, float | None]]]:
        """The ids acknowledged and the ``(id, delay or None)`` retried, once the handler is
        done (``failed``: it raised or timed out)."""
        fallback = ("retry", None) if failed else ("ack", None)
        acks: list[str] = []
        retries: list[tuple[str, float | None]] = []
        for message in self.messages:
            kind, delay = message._decision or self._decision or fallback
            if kind == "ack":
                acks.append(message.id)
            else:
                retries.append((message.id, delay))
        return acks, retries
