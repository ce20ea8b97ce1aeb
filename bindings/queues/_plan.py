"""What ``[[queues.producers]]`` and ``[[queues.consumers]]`` add to an app: the ``_QUEUES``
object binding, the broker (internal: only the queue objects' env has it) and one ``env``
binding per producer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from raydo.actors import BindingSpec, PlatformSpec
from raydo.bindings import Plan

from ._broker import BROKER, OBJECTS, ConsumerSpec

MAX_SHARDS = 4


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
        class_name="raydo.bindings.queues._object:QueueObject",
        shards=min(len(names), MAX_SHARDS),
        idle_timeout_s=60.0,
        # Every producer of every gateway sends to one object per queue.
        mailbox_limit=10_000,
        internal=True,
    )
    broker = PlatformSpec(
        BROKER,
        "raydo.bindings.queues:broker",
        {"consumers": [s.as_options() for s in specs]},
        internal=True,
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
