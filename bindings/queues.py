"""Queues, the Cloudflare Queues shape: ``env.JOBS.send(body)`` and a consumer handler.

Each queue is one internal object (binding ``_QUEUES``, named by the queue), whose SQLite
file holds its messages; :mod:`bindings.queue_object` delivers them. This module is what
the rest of the runtime sees:

* :func:`plan` turns ``[[queues.producers]]`` and ``[[queues.consumers]]`` into the
  ``_QUEUES`` object binding, one :class:`Queue` per producer binding (``env.JOBS``) and
  a hidden broker (``env._QUEUE_BROKER``) through which queue objects find their consumer,
  their handler and each other;
* :class:`Queue` checks and encodes messages in the sender's process, then hands them to
  the queue's object in one call.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from raydo.actors import BindingSpec, Namespace, PlatformContext, PlatformSpec, Stub
from raydo.actors._loading import import_from_app
from raydo.storage import codec
from raydo.storage.limits import LimitExceeded, Limits

from . import Plan
from .queue_batch import Message, MessageBatch, check_delay

__all__ = ["ConsumerSpec", "Message", "MessageBatch", "Queue", "plan"]

OBJECTS = "_QUEUES"
"""The internal object binding: one object per queue, named by the queue."""
BROKER = "_QUEUE_BROKER"
"""The hidden ``env`` entry queue objects reach their consumer and each other through."""
MAX_SHARDS = 4

Handler = Callable[[MessageBatch, Any], Any]


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """A ``[[queues.consumers]]`` entry, with its handler resolved."""

    queue: str
    handler: str
    max_batch_size: int = 10
    max_batch_timeout: float = 5.0
    max_retries: int = 3
    dead_letter_queue: str | None = None
    retry_delay: float = 1.0
    """Seconds before the first retry of a failed message; doubled each further attempt."""

    def backoff(self, attempts: int) -> float:
        """Seconds before delivering again a message delivered ``attempts`` times."""
        return float(min(self.retry_delay * 2.0 ** max(attempts - 1, 0), 43_200.0))


def plan(
    producers: Iterable[Mapping[str, Any]], consumers: Iterable[Mapping[str, Any]], main: str
) -> Plan:
    """The ``_QUEUES`` object binding, the broker and one ``env`` binding per producer.

    A consumer without ``handler`` gets the ``queue`` function of ``main``'s module.
    """
    producers, consumers = list(producers), list(consumers)
    if not producers and not consumers:
        return Plan()
    specs = [
        ConsumerSpec(
            queue=str(c["queue"]),
            handler=handler_reference(c, main),
            max_batch_size=int(c.get("max_batch_size", 10)),
            max_batch_timeout=float(c.get("max_batch_timeout", 5.0)),
            max_retries=int(c.get("max_retries", 3)),
            dead_letter_queue=c.get("dead_letter_queue"),
            retry_delay=float(c.get("retry_delay", 1.0)),
        )
        for c in consumers
    ]
    names = {str(p["queue"]) for p in producers} | {s.queue for s in specs}
    names |= {s.dead_letter_queue for s in specs if s.dead_letter_queue}
    objects = BindingSpec(
        name=OBJECTS,
        class_name="raydo.bindings.queue_object:QueueObject",
        shards=min(len(names), MAX_SHARDS),
        idle_timeout_s=60.0,
        # Every producer of every gateway sends to one object per queue.
        mailbox_limit=10_000,
        internal=True,
    )
    broker = PlatformSpec(
        BROKER,
        "raydo.bindings.queues:broker",
        {"consumers": [_as_options(s) for s in specs]},
    )
    queues = [
        PlatformSpec(
            str(p["binding"]), "raydo.bindings.queues:producer", {"queue": str(p["queue"])}
        )
        for p in producers
    ]
    return Plan(objects=[objects], platform=[broker, *queues])


def handler_reference(consumer: Mapping[str, Any], main: str) -> str:
    """A consumer's ``handler``, or by default the ``queue`` function of ``main``'s module
    (as a Worker's ``queue()`` handler)."""
    return str(consumer.get("handler") or main.partition(":")[0] + ":queue")


def _as_options(spec: ConsumerSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in ConsumerSpec.__slots__}


class QueueBroker:
    """What queue objects share: each queue's consumer, its imported handler, and stubs."""

    def __init__(self, namespace: Namespace, consumers: Iterable[ConsumerSpec], app_root: str):
        self.namespace = namespace
        self.consumers = {c.queue: c for c in consumers}
        self._app_root = app_root
        self._handlers: dict[str, Handler] = {}

    def consumer(self, queue: str) -> ConsumerSpec | None:
        return self.consumers.get(queue)

    def handler(self, spec: ConsumerSpec) -> Handler:
        """The consumer's handler, imported on first use (raises when it cannot be)."""
        handler = self._handlers.get(spec.handler)
        if handler is None:
            found = import_from_app(self._app_root, spec.handler)
            if not callable(found):
                raise TypeError(f"queue handler {spec.handler} is not a function")
            handler = self._handlers[spec.handler] = found
        return handler

    def stub(self, queue: str) -> Stub:
        """A fresh stub of the queue's object (a stub broken by a reset stays broken)."""
        return self.namespace.get(self.namespace.id_from_name(queue))


def broker(ctx: PlatformContext) -> QueueBroker:
    """``env._QUEUE_BROKER`` in every process (factory named by :func:`plan`)."""
    consumers = [ConsumerSpec(**options) for options in ctx.options["consumers"]]
    return QueueBroker(ctx.namespace(OBJECTS), consumers, ctx.runtime.app_root)


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
