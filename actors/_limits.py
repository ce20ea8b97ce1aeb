"""Per-event time limits: which event is on the host's loop right now, and how one is stopped.

A host runs every turn's handler through :meth:`TurnMeter.run`, which drives the handler's
coroutine step by step (each ``send`` into it is one *step*: the code between two real
suspensions). Around each step it records, with two attribute stores and no clock, which
event is running on the loop thread (:attr:`TurnMeter.current`, :attr:`TurnMeter.step`).
That is all the hot path pays; the clocks are read by the host's watchdog
(:mod:`actors._watchdog`), once per tick and from its own thread:

- **CPU** (``cpu_ms``): the watchdog reads the loop thread's CPU clock every tick and charges
  the difference to the event whose step ran throughout the tick. A step that never yields
  is measured to within one tick; steps shorter than a tick are not charged (such an event
  lets the host's other objects run, and ``event_seconds`` still bounds it).
- **Wall time** (``event_seconds``): from the event's start. An event waiting on something
  (an await) past it is stopped from the loop (:meth:`TurnMeter.stop_waiting`); one whose
  step is running past it, by the watchdog.
- **Stall** (``host_stall_seconds``): the loop has not turned for that long. The event whose
  step holds it is stopped.

Stopping an event means: its :class:`RunningTurn` gets the :class:`EventStopped` error, and
it is raised inside the object's code: thrown into the coroutine at its await (an event that
waits), or, for a step that holds the loop, raised asynchronously in the loop thread
(:meth:`TurnMeter.raise_in_step`, ``PyThreadState_SetAsyncExc``) after its SQLite statement
is interrupted. Either way the event ends with the error, which the host turns into a reset of
the object and an :class:`~actors.ObjectReset` naming the limit for its caller.

The asynchronous raise must land inside the step it was meant for, never in whatever the loop
runs next: the watchdog raises only while holding :attr:`TurnMeter._lock` and after checking
that the step is still running, and the end of a step, when the watchdog has armed a raise,
takes the same lock and cancels a raise still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import sys
import threading
import time
import types
from collections.abc import Awaitable, Coroutine, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from raydo.storage import StorageCore

    from ._ids import ObjectId
    from ._spec import BindingSpec
    from .types import Event

#: The limits as they are named in the config, the logs, errors and metrics.
CPU_MS = "cpu_ms"
EVENT_SECONDS = "event_seconds"
HOST_STALL_SECONDS = "host_stall_seconds"


class EventStopped(BaseException):
    """Raised inside an object's code when its event passed a time limit (``.limit``).

    A ``BaseException``, like ``ctx.abort``'s, so ``except Exception`` in a handler does not
    swallow it; a handler that swallows it anyway still fails its event.
    """

    def __init__(self, limit: str = "", message: str = "") -> None:
        super().__init__(message or "the event was stopped")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class EventLimits:
    """The time limits of one binding's events (its ``[[durable_objects.bindings]]`` keys)."""

    cpu_ms: int
    event_seconds: float
    host_stall_seconds: float

    @classmethod
    def of(cls, binding: BindingSpec) -> EventLimits:
        return cls(binding.cpu_ms, binding.event_seconds, binding.host_stall_seconds)

    @property
    def tick(self) -> float:
        """How often the watchdog looks: a tenth of the smallest limit, 10 ms to 0.5 s."""
        smallest = min(self.cpu_ms / 1000, self.event_seconds, self.host_stall_seconds)
        return min(max(smallest / 10, 0.01), 0.5)


class RunningTurn:
    """One event whose handler runs under the meter: when it started, the CPU charged to it,
    and, once it is stopped, why."""

    __slots__ = (
        "cancelled",
        "core",
        "cpu",
        "escalated",
        "event",
        "object_id",
        "started",
        "stop",
        "stopped_at",
        "task",
    )

    def __init__(
        self, object_id: ObjectId, event: Event, core: StorageCore, started: float
    ) -> None:
        self.object_id = object_id
        self.event = event
        self.core = core
        self.started = started
        """``time.perf_counter()`` at the event's start."""
        self.task = asyncio.current_task()
        self.cpu = 0.0
        """CPU seconds the watchdog charged to the event."""
        self.stop: EventStopped | None = None
        self.stopped_at = 0.0
        self.cancelled = False  # its task was cancelled to wake it for the stop
        self.escalated = False  # the watchdog went past raising in the thread

    def stopped(self, limit: str, message: str, now: float) -> EventStopped:
        """Record that the event is stopped past ``limit`` (the first reason wins)."""
        if self.stop is None:
            self.stop, self.stopped_at = EventStopped(limit, message), now
        return self.stop


class Steps(Protocol):
    """What a gates-mode event does around each of its steps
    (:class:`actors._input_gate.TurnSteps`)."""

    def blocked(self) -> asyncio.Future[None] | None: ...

    def ended(self) -> BaseException | None: ...


class TurnMeter:
    """What runs on one host's loop thread: the step of which event, and the events running.

    Made by the host; :meth:`bind` is called on the loop thread before any event runs.
    """

    __slots__ = ("_fired", "_lock", "arming", "current", "running", "step", "thread_id")

    def __init__(self) -> None:
        self.current: RunningTurn | None = None
        """The event whose step runs on the loop thread now, if any."""
        self.step = 0
        """Counts the steps started: a step the watchdog saw twice ran throughout between."""
        self.running: set[RunningTurn] = set()
        """Every event under the meter: running a step or waiting in an await."""
        self.arming: int | None = None  # the step the watchdog is about to raise in
        self._fired: int | None = None  # the step it raised in, until that step ended
        self._lock = threading.Lock()
        self.thread_id = 0

    def bind(self) -> None:
        """The calling thread is the loop thread (call on the host's loop); stops that land
        in finalizers are kept out of the process's unraisable-exception reports."""
        self.thread_id = threading.get_ident()
        _SwallowedStops.install()

    def run(
        self, handler: Awaitable[Any], running: RunningTurn, steps: Steps | None = None
    ) -> Awaitable[Any]:
        """Await ``handler`` as the event ``running``: step by step under the meter, and with
        its stop, once it has one, raised inside it. ``steps`` (gates mode) is called around
        every step (see :mod:`actors._input_gate`)."""
        if isinstance(handler, types.CoroutineType):
            return _metered(self, handler, running, steps)
        return _metered(self, handler.__await__(), running, steps)

    # ---- stopping (loop thread) ------------------------------------------------------------

    def stop_waiting(self, running: RunningTurn, limit: str, message: str, now: float) -> None:
        """Stop an event that waits in an await (call on the loop thread): its task is
        cancelled to wake it, and the meter throws the stop into it instead."""
        running.stopped(limit, message, now)
        task = running.task
        if task is not None and not running.cancelled and not task.done():
            running.cancelled = True
            task.cancel()

    def _woken(self, running: RunningTurn, error: BaseException) -> BaseException:
        """What to throw into the event for ``error`` raised at its await: its stop, in place
        of the cancellation that woke it for that."""
        stop = running.stop
        if stop is None:
            return error
        task = running.task
        if running.cancelled and task is not None and isinstance(error, asyncio.CancelledError):
            running.cancelled = False
            task.uncancel()
        return stop

    # ---- stopping (watchdog thread) ---------------------------------------------------------

    def raise_in_step(self, running: RunningTurn, step: int) -> bool:
        """Raise :class:`EventStopped` in the loop thread if step ``step`` of ``running`` is
        still running there; True if it was raised (it surfaces at the step's next bytecode,
        or when the C call it is in returns)."""
        self.arming = step
        with self._lock:
            if self.current is not running or self.step != step:
                # A raise fired earlier may still be pending: the step's end must still see
                # `arming` and settle it, or the raise lands in whatever the loop runs next.
                if self._fired is None:
                    self.arming = None
                return False
            _set_async_exc(self.thread_id, EventStopped)
            self._fired = step
            return True

    def _settle(self) -> None:
        """End of a step the watchdog armed a raise for: cancel the raise if still pending."""
        with self._lock:
            fired, self._fired, self.arming = self._fired, None, None
        if fired is not None:
            _clear_async_exc(self.thread_id)


class _SwallowedStops:
    """``sys.unraisablehook`` in front of the one it finds: drops :class:`EventStopped`.

    An asynchronous raise lands at whatever bytecode the loop thread runs next, which may be a
    finalizer the step set off (``__del__``, a weakref callback, ``asyncio``'s task set
    forgetting a task). Python reports an exception there as unraisable and goes on with the
    step; the watchdog raises again on its next tick (:mod:`actors._watchdog`). Such a stop
    is the runtime's, not an error of the app's code, so it is not reported; every other
    unraisable exception goes on to the hook found.
    """

    __slots__ = ("previous",)

    def __init__(self, previous: Any) -> None:
        self.previous = previous

    def __call__(self, unraisable: Any) -> None:
        exc_type = unraisable.exc_type
        if isinstance(exc_type, type) and issubclass(exc_type, EventStopped):
            return
        self.previous(unraisable)

    @classmethod
    def install(cls) -> None:
        if not isinstance(sys.unraisablehook, cls):
            sys.unraisablehook = cls(sys.unraisablehook)


@types.coroutine
def _metered(
    meter: TurnMeter,
    coro: Coroutine[Any, Any, Any] | Generator[Any, Any, Any],
    running: RunningTurn,
    steps: Steps | None,
) -> Generator[Any, Any, Any]:
    # The steps' bookkeeping is inline (no calls): a raise armed by the watchdog can surface
    # only inside the step or in the settling at its end, both inside the try below.
    meter.running.add(running)
    send, throw = coro.send, coro.throw
    value: Any = None
    error: BaseException | None = None
    failed: BaseException | None = None
    try:
        while True:
            if steps is not None and error is None:
                # Gates mode: the step waits while another task holds the object's gate.
                blocked = steps.blocked()
                while blocked is not None:
                    try:
                        yield from blocked
                    except BaseException as exc:  # noqa: BLE001 - thrown on into the event
                        value, error = None, meter._woken(running, exc)
                        break
                    blocked = steps.blocked()
            try:
                meter.step += 1
                meter.current = running
                try:
                    yielded = send(value) if error is None else throw(error)
                    if steps is not None:
                        failed = steps.ended()  # commit what the step wrote
                finally:
                    meter.current = None
                    if meter.arming is not None:
                        meter._settle()
            except StopIteration as done:
                if running.stop is not None:
                    raise running.stop from None
                return done.value
            except EventStopped as stopped:
                raise _finish(meter, coro, running, stopped) from None
            if running.stop is not None:  # stopped while its step ran, then it awaited
                raise _finish(meter, coro, running, running.stop)
            if failed is not None:  # its commit failed: raised at the await instead
                value, error, failed = None, failed, None
                continue
            try:
                value, error = (yield yielded), None
            except BaseException as exc:  # noqa: BLE001 - thrown on into the event
                value, error = None, meter._woken(running, exc)
    finally:
        meter.running.discard(running)


def _finish(
    meter: TurnMeter,
    coro: Coroutine[Any, Any, Any] | Generator[Any, Any, Any],
    running: RunningTurn,
    stopped: EventStopped,
) -> EventStopped:
    """The stop to raise for a stopped event, once its coroutine is over: one still suspended
    gets the stop thrown in (its ``finally`` blocks run), then is closed."""
    stop = running.stop or stopped
    if getattr(coro, "cr_frame", None) is not None:
        meter.step += 1
        meter.current = running
        try:
            coro.throw(stop)
        except BaseException:  # noqa: BLE001 - the event is over whatever it raised
            pass
        finally:
            meter.current = None
            if meter.arming is not None:
                meter._settle()
        if getattr(coro, "cr_frame", None) is not None:
            # It awaited again instead of ending (RuntimeError): it is dropped anyway.
            with contextlib.suppress(RuntimeError):
                coro.close()
    return stop


def _async_exc_functions() -> tuple[Any, Any]:
    raise_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    raise_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
    raise_exc.restype = ctypes.c_int
    # The same function again, typed so None passes NULL: "clear the pending exception".
    clear_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
        ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
    )
    return raise_exc, clear_exc


# pythonapi functions hold the GIL while they run, so nothing runs between their checks.
_raise_exc, _clear_exc = _async_exc_functions()


def _set_async_exc(thread_id: int, error: type[BaseException]) -> None:
    _raise_exc(thread_id, error)


def _clear_async_exc(thread_id: int) -> None:
    _clear_exc(thread_id, None)


def now() -> float:
    """The clock every limit's times are on."""
    return time.perf_counter()
