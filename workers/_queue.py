"""The batch a Worker's ``queue(batch)`` handler is given (see :mod:`workers._handlers`),
under the platform's names:

* ``batch.queue``, ``batch.messages``, ``batch.ackAll()``, ``batch.retryAll(...)``;
* each message's ``id``, ``body``, ``timestamp``, ``attempts``, ``ack()``, ``retry(...)``.

A retry's delay is given as the platform's Python code gives it: ``retry(delaySeconds=30)``,
``retry({"delaySeconds": 30})`` or ``retry(delay_seconds=30)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from raydo.bindings.queues import Message, MessageBatch


def _delay(options: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> float | None:
    given = {**(options or {}), **kwargs}
    unknown = set(given) - {"delaySeconds", "delay_seconds"}
    if unknown:
        raise TypeError(f"retry() takes delaySeconds only, not {', '.join(sorted(unknown))}")
    delay = given.get("delaySeconds", given.get("delay_seconds"))
    return None if delay is None else float(delay)


class QueueMessage:
    """One message of a batch, as the platform's ``Message``."""

    def __init__(self, message: Message) -> None:
        self._message = message

    @property
    def id(self) -> str:
        return self._message.id

    @property
    def body(self) -> Any:
        return self._message.body

    @property
    def timestamp(self) -> datetime:
        return self._message.timestamp

    @property
    def attempts(self) -> int:
        return self._message.attempts

    def ack(self) -> None:
        """Mark the message delivered."""
        self._message.ack()

    def retry(self, options: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Deliver the message again, after ``delaySeconds`` when given."""
        self._message.retry(delay_seconds=_delay(options, kwargs))

    def __repr__(self) -> str:
        return f"QueueMessage(id={self.id!r}, body={self.body!r}, attempts={self.attempts})"


class QueueBatch:
    """A batch of one queue's messages, as the platform's ``MessageBatch``."""

    def __init__(self, batch: MessageBatch) -> None:
        self._batch = batch
        self.messages = [QueueMessage(m) for m in batch.messages]

    @property
    def queue(self) -> str:
        return self._batch.queue

    def ackAll(self) -> None:
        """Acknowledge every message that has no decision of its own."""
        self._batch.ack_all()

    def retryAll(self, options: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Retry every message that has no decision of its own."""
        self._batch.retry_all(delay_seconds=_delay(options, kwargs))

    ack_all = ackAll
    retry_all = retryAll
