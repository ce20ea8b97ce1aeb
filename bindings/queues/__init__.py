"""Queues, the Cloudflare Queues shape: ``env.JOBS.send(body)`` and a consumer handler.

::

    from raydo.bindings.queues import MessageBatch

    async def queue(batch: MessageBatch, env) -> None:
        for message in batch.messages:
            ...
            message.ack()

Each queue is one internal object (binding ``_QUEUES``, named by the queue), whose SQLite
file holds its messages; ``_object`` delivers them in batches (:class:`MessageBatch`, from
``_batch``). :class:`Queue` (``_producer``) checks and encodes messages in the sender's
process; queue objects find their consumer, its handler and each other through the hidden
broker (``_broker``); ``_plan`` turns the config entries into the bindings.
"""

from ._batch import MAX_DELAY_SECONDS, Message, MessageBatch
from ._broker import BROKER, OBJECTS, ConsumerSpec, QueueBroker, broker
from ._plan import handler_reference, plan
from ._producer import Queue, producer

__all__ = [
    "BROKER",
    "MAX_DELAY_SECONDS",
    "OBJECTS",
    "ConsumerSpec",
    "Message",
    "MessageBatch",
    "Queue",
    "QueueBroker",
    "broker",
    "handler_reference",
    "plan",
    "producer",
]
