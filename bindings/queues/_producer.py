"""A producer binding (``[[queues.producers]]``, ``env.JOBS``): checks and encodes messages in
the sender's process, then hands them to the queue's object in one call."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from raydo.actors import Namespace, PlatformContext
from raydo.storage import codec
from raydo.storage.limits import LimitExceeded, Limits

from ._batch import check_delay
from ._broker import OBJECTS


def producer(ctx: PlatformContext) -> Queue:
    """``env.<binding>`` of a ``[[queues.producers]]`` entry (factory named by :func:`plan`)."""
    return Queue(ctx.options["queue"], ctx.namespace(OBJECTS), ctx.runtime.limits)


class Queue:
    """A producer binding (``env.JOBS``): sends messages to one queue.

    Bodies are any value the storage codec encodes (the JSON types, plus bytes, big ints and
    datetimes), at most ``queue_message_bytes`` (128 KiB) encoded. Each call is one event of
    the queue's object: when it returns, the messages are committed to the queue's file.
    """

    def __init__(self, queue: str, namespace: Namespace, limits: Limits) -> None:
        self.queue = queue
        self._namespace = namespace
        self._limits = limits

    def __repr__(self) -> str:
        return f"Queue({self.queue!r})"

    async def send(self, body: Any, *, delay_seconds: float = 0) -> None:
        """Enqueue one message, delivered no earlier than ``delay_seconds`` (0 to 43,200)
        from now."""
        await self._enqueue([self._item(body, check_delay(delay_seconds))])

    async def send_batch(
        self, messages: Iterable[Mapping[str, Any]], *, delay_seconds: float = 0
    ) -> None:
        """Enqueue messages given as ``{"body": ..., "delay_seconds": ...}`` (the delay is
        optional; ``delay_seconds`` here is its default), all or none: at most
        ``queue_batch_messages`` (100) of them, ``queue_batch_bytes`` (256 KiB) together."""
        default = check_delay(delay_seconds)
        if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Iterable):
            raise TypeError("send_batch takes a list of {'body': ..., 'delay_seconds': ...}")
        items: list[list[Any]] = []
        total = 0
        for i, message in enumerate(messages):
            if i >= self._limits.queue_batch_messages:
                raise LimitExceeded(
                    "queue_batch_messages",
                    f"send_batch got more than {self._limits.queue_batch_messages} messages",
                )
            if not isinstance(message, Mapping) or "body" not in message:
                raise TypeError(
                    f"send_batch message {i} must be a dict with 'body' (and 'delay_seconds')"
                )
            unknown = set(message) - {"body", "delay_seconds"}
            if unknown:
                raise TypeError(f"send_batch message {i} has unknown keys {sorted(unknown)}")
            delay = check_delay(message.get("delay_seconds", default), f"message {i} delay")
            item = self._item(message["body"], delay)
            total += len(item[1])
            items.append(item)
        if total > self._limits.queue_batch_bytes:
            self._limits.check("queue_batch_bytes", total, "the batch's bodies")
        if items:
            await self._enqueue(items)

    def _item(self, body: Any, delay: float) -> list[Any]:
        try:
            packed = codec.encode(body)
        except codec.EncodeError as exc:
            raise codec.EncodeError(f"a queue message body: {exc}") from None
        self._limits.check("queue_message_bytes", len(packed), "a queue message body")
        return [uuid.uuid4().hex, packed, int(delay * 1000), None]

    async def _enqueue(self, items: list[list[Any]]) -> None:
        stub = self._namespace.get(self._namespace.id_from_name(self.queue))
        await stub.enqueue(items)
