"""The turn meter's asynchronous raise (actors/_limits.py) lands only inside the step it was
meant for: never in what the loop runs after that step ended, whatever the timing."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

from raydo.actors._ids import ObjectId
from raydo.actors._limits import EventStopped, RunningTurn, TurnMeter
from raydo.storage import StorageCore

OBJECT = ObjectId("ab" * 32, "X", None)


def running_turn(core: StorageCore) -> RunningTurn:
    return RunningTurn(OBJECT, None, core, time.perf_counter())  # type: ignore[arg-type]


async def a_few_steps(steps: int) -> int:
    total = 0
    for _ in range(steps):
        for i in range(2000):  # some bytecode inside the step, for a raise to land in
            total += i
        await asyncio.sleep(0)
    return total


def raise_at_random(meter: TurnMeter, stop: threading.Event, raised: list[int]) -> None:
    """The watchdog's side, as fast as it can: raise in whatever step is running now."""
    while not stop.is_set():  # a try every 0.1 ms
        running, step = meter.current, meter.step
        if running is not None:
            running.stopped("cpu_ms", "stopped by the test", time.perf_counter())
            if meter.raise_in_step(running, step):
                raised[0] += 1
        time.sleep(0.0001)


async def test_a_raise_never_lands_outside_the_step_it_was_meant_for(tmp_path: object) -> None:
    meter = TurnMeter()
    meter.bind()
    core = StorageCore(tmp_path / "x.sqlite")  # type: ignore[operator]
    stop, raised = threading.Event(), [0]
    watchdog = threading.Thread(target=raise_at_random, args=(meter, stop, raised))
    # Switch threads every 10 µs instead of 5 ms: raises then come at every point of a step,
    # its start and end included.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    watchdog.start()
    stopped = finished = 0
    deadline = time.monotonic() + 2.0
    try:
        # Code between the runs is the loop's own: a stray raise would fail the test here.
        while time.monotonic() < deadline or stopped == 0:
            try:
                assert await meter.run(a_few_steps(5), running_turn(core)) == 5 * sum(range(2000))
                finished += 1
            except EventStopped as exc:
                assert exc.limit == "cpu_ms"
                stopped += 1
            await asyncio.sleep(0)
    finally:
        stop.set()
        watchdog.join()
        sys.setswitchinterval(switch_interval)
        core.close()
    assert stopped > 0 and raised[0] >= stopped
    assert not meter.running, "a stopped event stayed registered"
    print(f"{finished} runs finished, {stopped} stopped, {raised[0]} raises")


async def test_no_raise_for_a_step_that_has_ended(tmp_path: object) -> None:
    meter = TurnMeter()
    meter.bind()
    core = StorageCore(tmp_path / "x.sqlite")  # type: ignore[operator]
    running = running_turn(core)
    assert await meter.run(a_few_steps(1), running) == sum(range(2000))
    assert meter.current is None
    assert meter.raise_in_step(running, meter.step) is False
    total = 0
    for i in range(100_000):  # a raise pending in this thread would land here
        total += i
    assert total == sum(range(100_000))
    core.close()


class RaisesWhenCollected:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __del__(self) -> None:
        raise self.error


def test_a_stop_that_lands_in_a_finalizer_is_not_reported_but_other_errors_are() -> None:
    seen: list[type[BaseException] | None] = []
    saved = sys.unraisablehook

    def recorder(unraisable: object) -> None:
        seen.append(getattr(unraisable, "exc_type", None))

    sys.unraisablehook = recorder
    try:
        TurnMeter().bind()  # puts its filter in front of the hook it finds
        RaisesWhenCollected(EventStopped("cpu_ms"))  # collected at once: its __del__ raises
        RaisesWhenCollected(ValueError("the app's own"))
        TurnMeter().bind()  # a second meter adds no second filter
        assert getattr(sys.unraisablehook, "previous", None) is recorder
        RaisesWhenCollected(KeyError("again"))
    finally:
        sys.unraisablehook = saved
    assert seen == [ValueError, KeyError]
