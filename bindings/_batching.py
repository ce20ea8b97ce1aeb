"""Reads of one binding that arrive together, sent to its object as one event.

A point read through ``env.DB`` or a KV cache miss costs microseconds in SQLite and tens of
microseconds around it (the RPC, the object's turn). A :class:`ReadBatch` collects the reads
that callers start in one pass of the event loop and, at the end of that pass, sends them in
one call of the object's batch method, which answers each as its own call would; each
caller gets its own answer or error. In order:

1. :meth:`ReadBatch.read` sends the item alone, at once, when nothing of the batch is
   queued or on its way (a caller reading one thing at a time pays nothing for batching);
   else it queues the item and, for the first of a pass, schedules the send.
2. The send calls ``send_many(items)``. An answer of None for an item (the object could not
   answer it there: the reply would grow too big, say) sends that item alone with
   ``send_one``; so does the batch's failure with :class:`~actors.ObjectReset` (a time limit
   one read breached stops the whole event: each read is tried alone, so only that one fails
   again). Any other failure is every item's.

Only reads go this way (each item must be safe to send twice), and only from outside an
object's event: inside one, a call leaves through the output gate of that event, so it is
sent on its own. A batched read is answered at a point between its start and its answer,
like any read sent alone; it only waits for the end of the loop's pass to leave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from raydo.actors import ObjectReset

Item = TypeVar("Item")
Answer = TypeVar("Answer")

#: At most this many reads travel in one event; more in one pass start another.
MAX_BATCH = 64


class ReadBatch(Generic[Item, Answer]):
    """The reads of one object started in the same pass of the loop, sent together."""

    __slots__ = ("_in_flight", "_pending", "_send_many", "_send_one", "_tasks")

    def __init__(
        self,
        send_many: Callable[[list[Item]], Awaitable[list[Answer | None]]],
        send_one: Callable[[Item], Awaitable[Answer]],
    ) -> None:
        self._send_many = send_many
        self._send_one = send_one
        self._pending: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # owned here; each caller awaits its part
        self._in_flight = 0  # reads sent alone by their callers, not answered yet

    async def read(self, item: Item) -> Answer:
        """The answer to ``item`` (or its error), sent alone or with the reads beside it."""
        if self._pending or self._in_flight or self._tasks:
            return await self._queue(item)
        self._in_flight += 1
        try:
            return await self._send_one(item)
        finally:
            self._in_flight -= 1

    def _queue(self, item: Item) -> asyncio.Future[Answer]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Answer] = loop.create_future()
        pending = self._pending
        pending.append((item, answer))
        if len(pending) == 1:
            loop.call_soon(self._flush)
        elif len(pending) >= MAX_BATCH:
            self._flush()
        return answer

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return  # sent already: the batch filled up before the pass ended
        work = self._one(*pending[0]) if len(pending) == 1 else self._many(pending)
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _many(self, pending: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        try:
            answers = await self._send_many([item for item, _ in pending])
            if len(answers) != len(pending):
                raise RuntimeError(f"{len(answers)} answers to {len(pending)} reads")
        except ObjectReset:
            answers = [None] * len(pending)
        except BaseException as exc:  # every caller gets it
            for _, answer in pending:
                _fail(answer, exc)
            if not isinstance(exc, Exception):  # cancelled, or the process ends
                raise
            return
        alone = []
        for (item, answer), got in zip(pending, answers, strict=True):
            if got is None:
                alone.append(self._one(item, answer))
            elif not answer.done():
                answer.set_result(got)
        if alone:
            await asyncio.gather(*alone)

    async def _one(self, item: Item, answer: asyncio.Future[Answer]) -> None:
        try:
            got = await self._send_one(item)
        except BaseException as exc:  # the caller gets it
            _fail(answer, exc)
            if not isinstance(exc, Exception):  # cancelled, or the process ends
                raise
            return
        if not answer.done():
            answer.set_result(got)


def _fail(answer: asyncio.Future[Any], exc: BaseException) -> None:
    if answer.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        answer.cancel()
    else:
        answer.set_exception(exc)
