"""How queue objects find their consumer, its handler and each other: the hidden broker.

Every process that builds an ``env`` makes one :class:`QueueBroker` (factory :func:`broker`),
an internal binding: queue objects find it as ``env._QUEUE_BROKER`` in the env platform
objects get, and the app's own ``env`` does not have it. The consumers it knows come from the
``[[queues.consumers]]`` entries, as :class:`ConsumerSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from raydo.actors import Namespace, PlatformContext, Stub, import_from_app

from ._batch import MessageBatch

OBJECTS = "_QUEUES"
"""The internal object binding: one object per queue, named by the queue."""
BROKER = "_QUEUE_BROKER"
"""The internal binding queue objects reach their consumer and each other through."""

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

    def as_options(self) -> dict[str, Any]:
        """The spec as plain data, the way it travels in a platform binding's options."""
        return {name: getattr(self, name) for name in ConsumerSpec.__slots__}


class QueueBroker:
    """What queue objects share: each queue's consumer, its imported handler, and stubs."""

    def __init__(self, namespace: Namespace, consumers: Iterable[ConsumerSpec], app_root: str):
        self.namespace = namespace
        self.consumers = {c.queue: c for c in consumers}
        self._app_root = app_root

    def consumer(self, queue: str) -> ConsumerSpec | None:
        return self.consumers.get(queue)

    def handler(self, spec: ConsumerSpec) -> Handler:
        """The consumer's handler, imported for each batch (raises when it cannot be): after
        ``raydo dev`` reloads the app's code, the next batch takes the new one (a kept
        function would be the old code's; the import is a lookup once the module is in)."""
        found = import_from_app(self._app_root, spec.handler)
        if not callable(found):
            raise TypeError(f"queue handler {spec.handler} is not a function")
        handler: Handler = found
        return handler

    def stub(self, queue: str) -> Stub:
        """A fresh stub of the queue's object (a stub broken by a reset stays broken)."""
        return self.namespace.get(self.namespace.id_from_name(queue))


def broker(ctx: PlatformContext) -> QueueBroker:
    """The broker of every process (factory named by :func:`plan`)."""
    consumers = [ConsumerSpec(**options) for options in ctx.options["consumers"]]
    return QueueBroker(ctx.namespace(OBJECTS), consumers, ctx.runtime.app_root)
