"""An object's input gate: its critical sections, and the steps of events in gates mode.

Every object has an :class:`InputGate`. In both modes ``ctx.block_concurrency_while(fn)``
is a :class:`CriticalSection` on it: while one is held, no other event of the object is
delivered, and the event that activated the object waits for a section its constructor
started. In ``concurrency = "strict"`` that changes nothing else (events already run one at
a time); in ``concurrency = "gates"`` (Cloudflare's rules) it is what keeps interleaving out.

In gates mode the host starts an object's events as they arrive and drives each one's
coroutine step by step (:mod:`actors._limits`; a *step* is the code between two real
suspensions). Around every step, the event's :class:`TurnSteps`, in order:

1. Before the step: waits while another task holds the gate (a critical section, or an
   event inside ``storage.transaction()``). Storage calls never suspend, so nothing
   interleaves inside them.
2. After a step that suspended: commits what the step wrote through the output gate (the
   writes made between two awaits commit together) and lets its WebSocket sends go once
   that commit is durable. A step that suspends inside ``storage.transaction()`` commits
   nothing and holds the gate instead: the open transaction is a critical section until a
   later step of the event ends outside it.

So at any moment the object's open transaction holds the writes of one step of one event,
and a failing step rolls back only its own writes. Tasks an event starts itself
(``asyncio.create_task``, ``gather``) are not events: the gate does not hold them back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from raydo.storage import StorageCore

T = TypeVar("T")
log = logging.getLogger("raydo.object")


class Hold:
    """One holder of the gate: the task it runs in (None until it has one)."""

    __slots__ = ("task",)

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task


class InputGate:
    """Who holds one object's gate, who waits for it, and who waits for it to open."""

    __slots__ = ("_holder", "_queue", "_waiters")

    def __init__(self) -> None:
        self._holder: Hold | None = None
        self._queue: deque[Hold] = deque()  # holds that asked while it was taken
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def held(self) -> bool:
        return self._holder is not None

    def blocks(self, task: asyncio.Task[Any] | None) -> bool:
        """True when the gate is held by something other than ``task``."""
        holder = self._holder
        return holder is not None and (holder.task is None or holder.task is not task)

    def holds(self, task: asyncio.Task[Any] | None) -> bool:
        holder = self._holder
        return holder is not None and task is not None and holder.task is task

    def changed(self) -> asyncio.Future[None]:
        """A future resolved the next time the gate changes hands or opens (one per waiter,
        so cancelling a waiter cancels nobody else)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    async def passed(self) -> None:
        """Return once the gate does not block the calling task."""
        task = asyncio.current_task()
        while self.blocks(task):
            await self.changed()

    def take(self, hold: Hold) -> None:
        """Hold the gate now if it is free, else queue for it (FIFO)."""
        if self._holder is None:
            self._holder = hold
        else:
            self._queue.append(hold)

    def give_back(self, hold: Hold) -> None:
        """``hold`` is done: the next queued hold gets the gate, or it opens."""
        if self._holder is hold:
            self._holder = self._queue.popleft() if self._queue else None
            self._wake()
        elif hold in self._queue:
            self._queue.remove(hold)

    def wake(self) -> None:
        """Resolve every :meth:`changed` future now (something they wait on may have
        changed: an event of the object ended)."""
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class CriticalSection(Hold, Generic[T]):
    """``ctx.block_concurrency_while(fn)``: awaitable; holds the gate from the call on.

    Awaited at once (the usual ``await ctx.block_concurrency_while(fn)``), ``fn`` runs in the
    awaiting task. Not awaited by the time the loop turns (a constructor cannot await), it
    runs as a task of its own, which the event that activated the object waits for. A
    section started inside the task that holds the gate is nested in its holder. If ``fn``
    raises, ``failed`` is called (the object is reset) and the exception propagates.
    """

    __slots__ = ("_awaited", "_failed", "_fn", "_gate", "_nested", "_started")

    def __init__(
        self, gate: InputGate, fn: Callable[[], Awaitable[T]], failed: Callable[[], None]
    ) -> None:
        super().__init__(None)
        self._gate = gate
        self._fn = fn
        self._failed = failed
        self._awaited = False
        self._started: asyncio.Task[T] | None = None
        loop = asyncio.get_running_loop()
        self._nested = gate.holds(asyncio.current_task())
        if not self._nested:
            gate.take(self)
        loop.call_soon(self._start_unless_awaited)

    def __await__(self) -> Generator[Any, None, T]:
        if self._started is not None:
            return (yield from self._started)
        self._awaited = True
        return (yield from self._run().__await__())

    def _start_unless_awaited(self) -> None:
        if not self._awaited and self._started is None:
            self._started = asyncio.get_running_loop().create_task(self._run())
            self._started.add_done_callback(_retrieve)

    async def _run(self) -> T:
        self.task = asyncio.current_task()
        gate = self._gate
        try:
            if not self._nested:
                while gate.blocks(self.task):
                    await gate.changed()
            try:
                return await self._fn()
            except BaseException:
                self._failed()
                raise
        finally:
            if not self._nested:
                gate.give_back(self)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a block_concurrency_while() callback failed", exc_info=task.exception())


class TurnSteps:
    """The hooks around each step of one event in gates mode (see the module's text)."""

    __slots__ = ("_core", "_failed", "_gate", "_hold", "_pending", "_task")

    def __init__(
        self,
        gate: InputGate,
        core: StorageCore,
        pending: Callable[[], bool],
        failed: Callable[[], None],
    ) -> None:
        self._gate = gate
        self._core = core
        self._pending = pending  # WebSocket sends waiting for a commit
        self._failed = failed
        self._task = asyncio.current_task()
        self._hold: Hold | None = None  # the gate held for an open storage.transaction()

    def blocked(self) -> asyncio.Future[None] | None:
        """Before a step: a future to wait on while another task holds the gate, or None."""
        if self._gate.blocks(self._task):
            return self._gate.changed()
        return None

    def ended(self) -> BaseException | None:
        """After a step that suspended: commit what it wrote (or hold the gate while a
        transaction stays open). A failed commit is returned, to be raised in the event,
        and resets the object."""
        core = self._core
        if core.in_explicit_transaction:
            if self._hold is None:
                self._hold = Hold(self._task)
                self._gate.take(self._hold)
            return None
        if self._hold is not None:
            self.release()
        if core.dirty or self._pending():
            try:
                core.commit()  # the event's reply waits for durability at its end
            except Exception as exc:  # noqa: BLE001 - raised inside the event instead
                self._failed()
                return exc
        return None

    def release(self) -> None:
        """The event ended (or left its transaction): give the gate back if it held it."""
        hold, self._hold = self._hold, None
        if hold is not None:
            self._gate.give_back(hold)


#: The values of a binding's ``concurrency`` (and of a class's ``concurrency`` attribute).
CONCURRENCY_MODES = ("strict", "gates")


def concurrency_of(configured: str | None, cls: type) -> str:
    """The mode a binding's objects run in: the config's, else the class's ``concurrency``
    attribute, else ``"strict"``; a value that is neither mode is refused, naming it."""
    if configured is not None:
        if configured not in CONCURRENCY_MODES:
            raise ValueError(f"concurrency must be 'strict' or 'gates', not {configured!r}")
        return configured
    mode = getattr(cls, "concurrency", "strict")
    if mode not in CONCURRENCY_MODES:
        raise TypeError(f"{cls.__name__}.concurrency is {mode!r}: it must be 'strict' or 'gates'")
    return str(mode)
