"""A host's watchdog: a thread that stops the event freezing the host's loop, or past its limits.

One per host, started by :meth:`Host.start` on the host's loop and stopped and joined by
:meth:`Host.close`. It has two halves:

- **The beat**, on the loop: a timer every tick (a tenth of the smallest limit, 10 ms to
  0.5 s) that records that the loop turned, and stops the events that wait in an await past
  ``event_seconds`` (:meth:`TurnMeter.stop_waiting`). On Ray it also re-arms
  :func:`faulthandler.dump_traceback_later`, the backstop that needs no GIL: a loop that has
  not turned for three times ``host_stall_seconds`` ends the host's process, with every
  thread's traceback in the worker's log, and Ray restarts the host.
- **The thread**, every tick: it charges the loop thread's CPU to the event whose step ran
  throughout (see :mod:`actors._limits`) and stops that step's event when it passed
  ``cpu_ms``, ``event_seconds``, or held the loop for ``host_stall_seconds``. Stopping, in
  order: the object's SQLite statement is interrupted (``Connection.interrupt()`` through
  :meth:`StorageCore.interrupt`), and :class:`EventStopped` is raised in the loop thread
  (Python code that never yields gets it at its next bytecode). If the same step still holds
  the loop one ``host_stall_seconds`` later (a C call that does not return, code that
  swallows the error), on Ray the watchdog ends the host's process so Ray restarts it (its
  objects come back from their files); in process it never does: it logs that the event
  cannot be stopped and raises again.

Every case is logged on the ``raydo.events`` logger with the object (its fields as in
:mod:`actors._failures`) and counted in :class:`HostMetrics` (``stops_<limit>``, ``stalls``,
``stop_escalations``).
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import threading
import time
from typing import Any

from ._failures import describe_event
from ._failures import log as events_log
from ._limits import (
    CPU_MS,
    EVENT_SECONDS,
    HOST_STALL_SECONDS,
    EventLimits,
    RunningTurn,
    TurnMeter,
    now,
)
from ._metrics import HostMetrics

log = logging.getLogger("raydo.host")

#: The exit status of a host process the watchdog ended (Ray restarts it).
STUCK_EXIT_STATUS = 75
#: The backstop ends the process after this many ``host_stall_seconds`` without a beat.
BACKSTOP_STALLS = 3


class Watchdog:
    """Watches one host's loop (see the module's text)."""

    def __init__(
        self,
        meter: TurnMeter,
        limits: EventLimits,
        metrics: HostMetrics,
        label: str,
        *,
        may_end_process: bool,
    ) -> None:
        self.meter = meter
        self.limits = limits
        self.metrics = metrics
        self.label = label
        self.may_end_process = may_end_process
        """True on Ray: the last resort ends the host's process. Never in process."""
        self.last_beat = now()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beat_handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._cpu_clock = 0
        self._seen: tuple[RunningTurn | None, int, float] = (None, -1, 0.0)
        self._stall_noticed = False
        self._backstop = False

    def start(self) -> None:
        """Start the beat and the thread (call once, on the host's loop)."""
        self.meter.bind()
        self._loop = asyncio.get_running_loop()
        self._cpu_clock = time.pthread_getcpuclockid(self.meter.thread_id)
        self.last_beat = now()
        self._beat()
        self._thread = threading.Thread(
            target=self._watch, name=f"raydo-watchdog {self.label}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the beat, then the thread, and return once the thread has ended."""
        if self._beat_handle is not None:
            self._beat_handle.cancel()
            self._beat_handle = None
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._backstop:
            faulthandler.cancel_dump_traceback_later()
            self._backstop = False

    # ---- the beat (loop thread) --------------------------------------------------------------

    def _beat(self) -> None:
        t = self.last_beat = now()
        limit = self.limits.event_seconds
        meter = self.meter
        for running in meter.running:
            if running.stop is None and t - running.started > limit:
                message = (
                    f"the event ran {t - running.started:.1f} s, past its limit"
                    f" {EVENT_SECONDS} = {limit:g}"
                )
                meter.stop_waiting(running, EVENT_SECONDS, message, t)
                self._stopped(running, EVENT_SECONDS, message, "waking it at its await")
        if self.may_end_process:
            self._arm_backstop()
        assert self._loop is not None
        self._beat_handle = self._loop.call_later(self.limits.tick, self._beat)

    def _arm_backstop(self) -> None:
        try:
            faulthandler.dump_traceback_later(
                BACKSTOP_STALLS * self.limits.host_stall_seconds, exit=True
            )
            self._backstop = True
        except (ValueError, RuntimeError, OSError) as exc:  # no usable stderr
            self.may_end_process = False
            log.error("%s: no watchdog backstop: %s", self.label, exc)

    # ---- the thread ----------------------------------------------------------------------------

    def _watch(self) -> None:
        tick = self.limits.tick
        while not self._stopping.wait(tick):
            try:
                self._check()
            except Exception:  # the watchdog must outlive a bug in one look
                log.exception("%s: the watchdog's check failed", self.label)

    def _check(self) -> None:
        meter, limits = self.meter, self.limits
        cpu = time.clock_gettime(self._cpu_clock)
        step = meter.step
        running = meter.current
        t = now()
        seen_running, seen_step, seen_cpu = self._seen
        self._seen = (running, step, cpu)
        if running is not None and running is seen_running and step == seen_step:
            running.cpu += cpu - seen_cpu  # the same step ran throughout: all of it is its
        held = t - self.last_beat
        stalled = held > limits.host_stall_seconds
        if not stalled:
            self._stall_noticed = False
        elif not self._stall_noticed:
            self._stall_noticed = True
            self.metrics.stalls += 1
            if running is None:
                log.warning(
                    "%s: the host's loop has not turned for %.1f s (%s = %g), outside this"
                    " host's events (in the host's own work, or, in process, another host's"
                    " on the same loop): nothing to stop here",
                    self.label,
                    held,
                    HOST_STALL_SECONDS,
                    limits.host_stall_seconds,
                )
        if running is None:
            return
        if running.stop is not None:
            if stalled and t - running.stopped_at > limits.host_stall_seconds:
                self._escalate(running, step, t)
            elif running is seen_running and step == seen_step:
                # The stopped step still runs a tick later: the raise may have landed in a
                # finalizer the step ran (``__del__``, a weakref callback), where Python
                # swallows it as "unraisable". Raise again; escalating is for a step that
                # outlasts a whole stall bound of raises.
                meter.raise_in_step(running, step)
            return
        if running.cpu * 1000 > limits.cpu_ms:
            limit = CPU_MS
            message = (
                f"the event used {running.cpu * 1000:.0f} ms of CPU, past its limit"
                f" {CPU_MS} = {limits.cpu_ms}"
            )
        elif t - running.started > limits.event_seconds:
            limit = EVENT_SECONDS
            message = (
                f"the event ran {t - running.started:.1f} s, past its limit"
                f" {EVENT_SECONDS} = {limits.event_seconds:g}"
            )
        elif stalled:
            limit = HOST_STALL_SECONDS
            message = (
                f"the event held the host's loop for {held:.1f} s, past its limit"
                f" {HOST_STALL_SECONDS} = {limits.host_stall_seconds:g}"
            )
        else:
            return
        running.stopped(limit, message, t)
        running.core.interrupt()
        raised = meter.raise_in_step(running, step)
        how = "interrupting its SQL and raising in the host's thread" if raised else "it yielded"
        self._stopped(running, limit, message, how)

    def _escalate(self, running: RunningTurn, step: int, t: float) -> None:
        """The step of a stopped event still holds the loop one stall bound later."""
        running.stopped_at = t  # the next try, if any, one bound from now
        self.metrics.stop_escalations += 1
        if self.may_end_process:
            self._log(
                logging.CRITICAL,
                running,
                "cannot be stopped: ending the host's process so Ray restarts it",
            )
            for handler in logging.getLogger().handlers + events_log.handlers:
                handler.flush()
            os._exit(STUCK_EXIT_STATUS)
        running.core.interrupt()
        self.meter.raise_in_step(running, step)
        if not running.escalated:
            running.escalated = True
            self._log(
                logging.ERROR,
                running,
                "cannot be stopped (a call that does not return, or code that swallows the"
                " error); an in-process host never ends its process: its other objects wait"
                " until the event yields. Raising in the host's thread again",
            )

    # ---- telling ------------------------------------------------------------------------------

    def _stopped(self, running: RunningTurn, limit: str, message: str, how: str) -> None:
        metrics = self.metrics
        if limit == CPU_MS:
            metrics.stops_cpu_ms += 1
        elif limit == EVENT_SECONDS:
            metrics.stops_event_seconds += 1
        else:
            metrics.stops_host_stall_seconds += 1
        self._log(logging.WARNING, running, f"{message}: stopping it ({how})", limit=limit)

    def _log(self, level: int, running: RunningTurn, what: str, limit: str | None = None) -> None:
        object_id = running.object_id
        event = describe_event(running.event)
        name = "" if object_id.name is None else f" (name {object_id.name!r})"
        fields: dict[str, Any] = {
            "binding": object_id.namespace,
            "object_id": object_id.hex,
            "object_name": object_id.name,
            "event": event,
            "host": self.label,
        }
        if limit is not None:
            fields["limit"] = limit
        events_log.log(
            level,
            "%s event of %s object %s%s: %s",
            event,
            object_id.namespace,
            object_id.hex,
            name,
            what,
            extra={"fields": fields},
        )
