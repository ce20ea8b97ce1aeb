"""A Worker's ``ctx``: what its handlers hand work to that outlives their answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger("raydo.workers")


class Context:
    """A Worker's ``ctx``: ``waitUntil(awaitable)`` (also ``wait_until``), and
    ``passThroughOnException()``, accepted and without effect (raydo has no origin behind it)."""

    def __init__(self, tasks: set[asyncio.Task[Any]] | None = None) -> None:
        self._tasks = tasks if tasks is not None else set()
        self.props: dict[str, Any] = {}

    def waitUntil(self, awaitable: Awaitable[Any]) -> None:
        """Run ``awaitable`` on after the response is sent; its failure is logged."""

        async def run() -> None:
            try:
                await awaitable
            except Exception:
                log.exception("ctx.waitUntil work failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    wait_until = waitUntil

    def passThroughOnException(self) -> None:
        """Accepted for compatibility: there is no origin to fall through to."""

    pass_through_on_exception = passThroughOnException
