"""A Worker's ``queue(batch)`` and ``scheduled(controller)`` handlers, served by raydo.

raydo calls a queue consumer as ``queue(batch, env)`` and a cron trigger as
``scheduled(controller, env)``: functions of the ``main`` module. A ``Default`` Worker class
defining either method gets that function made for it in its module (unless the module
defines its own; see :meth:`~workers.WorkerEntrypoint.__init_subclass__`). For each event the
function:

1. puts the platform's names on raydo's event (:class:`~workers._queue.QueueBatch`,
   :class:`~workers._scheduled.ScheduledEvent`);
2. constructs ``Default(ctx, env)`` and awaits the method with the event, or with
   ``(event, env, ctx)`` when the method takes three arguments, as the platform's docs also
   write it (``async def scheduled(self, controller, env, ctx)``);
3. awaits the work handed to ``ctx.waitUntil`` before the event counts as handled.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ._context import Context
from ._queue import QueueBatch
from ._scheduled import ScheduledEvent

EventHandler = Callable[[Any, Any], Awaitable[None]]

#: The handlers raydo calls as module-level functions, and the face each event gets.
FACES: dict[str, Callable[[Any], Any]] = {"queue": QueueBatch, "scheduled": ScheduledEvent}


def _takes_env_and_ctx(method: Callable[..., Any]) -> bool:
    parameters = list(inspect.signature(method).parameters.values())[1:]  # after self
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return True
    return (
        len([p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) >= 3
    )


def event_handler(cls: type[Any], name: str) -> EventHandler:
    """raydo's ``name(event, env)`` for the Worker class ``cls`` (a ``WorkerEntrypoint``)."""
    face = FACES[name]
    with_env_and_ctx = _takes_env_and_ctx(getattr(cls, name))

    async def handle(event: Any, env: Any) -> None:
        tasks: set[asyncio.Task[Any]] = set()
        ctx = Context(tasks)
        worker = cls(ctx, env)
        method = getattr(worker, name)
        if with_env_and_ctx:
            await method(face(event), worker.env, ctx)
        else:
            await method(face(event))
        if tasks:
            await asyncio.gather(*list(tasks))

    handle.__qualname__ = f"{cls.__qualname__}.{name}"
    return handle
