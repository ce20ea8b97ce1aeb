"""Alarms against a real host (scenarios 36-43 of the reference), in-process and on Ray.

Each test starts the ``tests/apps/alarms`` app (copied under a unique name) with
``gateway.testing.start_app`` and drives ``Clock`` objects over RPC, so every alarm here is
set, indexed, armed and fired by the host's own timer.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import pytest

import raydo.actors._alarm_runs
from raydo.actors import ObjectError
from raydo.gateway.testing import TestApp
from raydo.storage import layout
from tests.hosts import kill_hosts
from tests.lifecycle.support import add_binding, now_ms, started
from tests.placements import Placement, local_only
from tests.polling import as_async, poll

T = TypeVar("T")


def index_rows(app: TestApp, binding: str = "CLOCK") -> dict[str, tuple[str, int]]:
    """The binding's alarm index, read from disk without going through any host."""
    path = layout.alarm_index_file(app.config.storage, binding)
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT object_hex, host, due_ms FROM alarms").fetchall()
    finally:
        conn.close()
    return {object_hex: (host, due) for object_hex, host, due in rows}


# ---- 36: an alarm fires once, never early, and reads None inside and after --------------------


async def test_an_alarm_fires_once_no_earlier_than_its_time(app: TestApp) -> None:
    clock = app.env.CLOCK.get_by_name("on-time")
    # Far enough out that reading it back lands first even on a loaded machine: at 200 ms,
    # the call after set_in once arrived when the alarm had rightly fired and cleared.
    before = now_ms()
    due = await clock.set_in(1_000)
    after = now_ms()
    assert isinstance(due, int)
    assert before + 1_000 - 1 <= due <= after + 1_000
    assert await clock.get_alarm() == due
    runs = await poll(clock.runs, lambda runs: len(runs) >= 1)
    assert len(runs) == 1
    [first] = runs
    assert first["at"] >= due, "the alarm ran before its time"
    assert first["scheduled_time"] == due
    assert first["retry_count"] == 0
    assert first["is_retry"] is False
    assert first["alarm_inside"] is None
    assert await clock.get_alarm() is None
    await asyncio.sleep(0.3)
    assert await clock.runs() == runs, "the alarm ran more than once"


# ---- 37: a deleted alarm never fires; a handler can set the next one --------------------------


async def test_a_deleted_alarm_never_fires(app: TestApp) -> None:
    clock = app.env.CLOCK.get_by_name("cancelled")
    # Far enough out that the delete lands first even on a loaded machine (at 150 ms, three
    # round trips through Ray once took longer and the alarm rightly fired).
    due = await clock.set_in(1_000)
    assert due is not None
    assert clock.id.hex in index_rows(app)
    await clock.delete_alarm()
    assert await clock.get_alarm() is None
    assert clock.id.hex not in index_rows(app)
    assert now_ms() < due, "the delete came after the alarm's time: the test proves nothing"
    while now_ms() < due + 300:  # well past the time it was set for
        await asyncio.sleep(0.05)
    assert await clock.runs() == []
    assert await app.run_alarm("CLOCK", "cancelled") is False


async def test_an_alarm_set_inside_the_handler_runs_next(
    alarms_dir: Path, placement: Placement
) -> None:
    add_binding(alarms_dir, "TRICKY", "more_objects:Tricky")

    async with started(alarms_dir, placement) as app:
        clock = app.env.CLOCK.get_by_name("again")
        await clock.plan(again_in_ms=150)
        due = await clock.set_in(50)
        runs = await poll(clock.runs, lambda runs: len(runs) >= 2)
        first, second = runs
        assert first["scheduled_time"] == due
        assert second["scheduled_time"] >= first["at"] + 150 - 1
        assert second["at"] >= second["scheduled_time"]
        assert [r["retry_count"] for r in runs] == [0, 0]
        assert await clock.get_alarm() is None
        # Set then deleted inside the handler: the handler ran once and nothing is queued.
        tricky = app.env.TRICKY.get_by_name("set-then-delete")
        await tricky.arm("set-then-delete", 50)
        await poll(tricky.attempts, lambda attempts: len(attempts) >= 1)
        assert await tricky.get_alarm() is None
        await asyncio.sleep(0.4)  # the deleted alarm was set for 50 ms after the run
        assert len(await tricky.attempts()) == 1
        assert len(await clock.runs()) == 2, "the re-set alarm ran more than once"


# ---- 38: a failing handler is retried with backoff, then cleared or dropped --------------------


@local_only
async def test_a_failing_alarm_is_retried_after_2_then_4_seconds(app: TestApp) -> None:
    clock = app.env.CLOCK.get_by_name("flaky")
    await clock.plan(failures=2)
    due = await clock.set_in(50)
    await poll(clock.runs, lambda runs: len(runs) >= 1)
    # Failed, its retry not begun: the alarm is still set (for its original time).
    assert await clock.get_alarm() == due
    assert index_rows(app)[clock.id.hex][1] == due
    runs = await poll(clock.runs, lambda runs: len(runs) >= 3, timeout=20)
    assert [r["retry_count"] for r in runs] == [0, 1, 2]
    assert [r["is_retry"] for r in runs] == [False, True, True]
    assert {r["scheduled_time"] for r in runs} == {due}
    assert runs[0]["at"] >= due
    for n, base_s in ((1, 2.0), (2, 4.0)):
        gap_s = (runs[n]["at"] - runs[n - 1]["at"]) / 1000
        assert base_s <= gap_s < base_s * 1.25 + 2, (n, gap_s)
    # The third attempt succeeded: the alarm is cleared, in the object and the index.
    assert await clock.get_alarm() is None
    assert clock.id.hex not in index_rows(app)
    await asyncio.sleep(0.3)
    assert len(await clock.runs()) == 3


async def test_an_alarm_that_always_fails_is_dropped_after_seven_attempts(
    local_alarms_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(raydo.actors._alarm_runs, "backoff_s", lambda retry: 0.02 * retry)

    async with started(local_alarms_dir, {}) as app:
        clock = app.env.CLOCK.get_by_name("hopeless")
        await clock.plan(failures=1000)
        due = await clock.set_in(20)
        runs = await poll(clock.runs, lambda runs: len(runs) >= 7)
        await poll(clock.get_alarm, lambda alarm: alarm is None)
        await asyncio.sleep(0.5)  # many times the last backoff
        runs = await clock.runs()
        assert [r["retry_count"] for r in runs] == list(range(7))
        assert [r["is_retry"] for r in runs] == [False] + [True] * 6
        assert {r["scheduled_time"] for r in runs} == {due}
        assert clock.id.hex not in index_rows(app)
        assert await app.run_alarm("CLOCK", "hopeless") is False


# ---- 39: ctx.abort(retry_alarm=False) is not retried; failures and plain aborts are ------------


async def test_abort_without_retry_inside_an_alarm_is_not_retried(
    alarms_dir: Path, placement: Placement, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process, a retry would come at once. A Ray host keeps the real backoff (2 s), so there
    # the proof is that the alarm is gone: a failed alarm awaiting its retry stays stored.
    monkeypatch.setattr(raydo.actors._alarm_runs, "backoff_s", lambda retry: 0.05)

    async with started(alarms_dir, placement) as app:
        clock = app.env.CLOCK.get_by_name("give-up")
        await clock.plan(abort="enough")
        await clock.set_in(50)
        await poll(clock.runs, lambda runs: len(runs) >= 1)
        await poll(clock.get_alarm, lambda alarm: alarm is None, timeout=5)
        assert clock.id.hex not in index_rows(app)
        await asyncio.sleep(0.4)
        runs = await clock.runs()
        assert [r["retry_count"] for r in runs] == [0]


async def test_a_failure_or_a_plain_abort_inside_an_alarm_is_retried(
    local_alarms_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(raydo.actors._alarm_runs, "backoff_s", lambda retry: 0.05)
    add_binding(local_alarms_dir, "TRICKY", "more_objects:Tricky")

    async with started(local_alarms_dir, {}) as app:
        clock = app.env.CLOCK.get_by_name("fails-once")
        await clock.plan(failures=1)
        await clock.set_in(20)
        runs = await poll(clock.runs, lambda runs: len(runs) >= 2)
        assert [r["retry_count"] for r in runs] == [0, 1]
        assert await clock.get_alarm() is None

        tricky = app.env.TRICKY.get_by_name("aborts-once")
        await tricky.arm("abort-once", 20)
        attempts = await poll(tricky.attempts, lambda attempts: len(attempts) >= 2)
        assert [a["retry_count"] for a in attempts] == [0, 1]
        assert await tricky.get_alarm() is None
        await asyncio.sleep(0.3)
        assert len(await tricky.attempts()) == 2
        assert len(await clock.runs()) == 2


# ---- 40: times in the past fire at once; bad times and classes without alarm() are refused ----


async def test_set_alarm_fires_past_times_at_once_refuses_bad_ones_and_takes_datetimes(
    app: TestApp,
) -> None:
    overdue = app.env.CLOCK.get_by_name("overdue")
    past = int(now_ms()) - 60_000
    set_at = now_ms()
    assert await overdue.set_at(past) == past
    runs = await poll(overdue.runs, lambda runs: len(runs) >= 1, timeout=5)
    assert runs[0]["scheduled_time"] == past
    assert runs[0]["at"] >= set_at
    assert runs[0]["retry_count"] == 0
    assert await overdue.get_alarm() is None

    clock = app.env.CLOCK.get_by_name("picky")
    refused = [
        (0, "ValueError"),
        (-1, "ValueError"),
        (-1.5, "ValueError"),
        (math.nan, "ValueError"),
        (math.inf, "ValueError"),
        ("tomorrow", "TypeError"),
        (True, "TypeError"),
        (None, "TypeError"),
    ]
    for when, type_name in refused:
        with pytest.raises(ObjectError) as caught:
            await clock.set_at(when)
        assert caught.value.type_name == type_name, when
        assert caught.value.remote is True
        assert "set_alarm()" in str(caught.value)
    assert await clock.get_alarm() is None  # nothing was set by the refused calls

    plus_two = timezone(timedelta(hours=2))
    aware = datetime(2031, 5, 6, 7, 8, 9, 250_000, tzinfo=plus_two)
    expected = int(aware.timestamp() * 1000)
    in_utc = datetime(2031, 5, 6, 5, 8, 9, 250_000, tzinfo=UTC)
    assert expected == int(in_utc.timestamp() * 1000)
    assert await clock.set_at(aware) == expected
    naive = datetime(2031, 5, 6, 7, 8, 9)  # naive means UTC
    expected_naive = int(datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC).timestamp() * 1000)
    assert await clock.set_at(naive) == expected_naive
    assert await clock.get_alarm() == expected_naive
    assert index_rows(app)[clock.id.hex][1] == expected_naive

    plain = app.env.PLAIN.get_by_name("no-handler")
    message = await plain.try_alarm()
    assert "alarm() handler" in message
    assert await app.run_alarm("PLAIN", "no-handler") is False


# ---- 41: alarms survive a restart, and fire after it without any request ----------------------


# Delays tried in turn for an alarm that must come due while the app is stopped, in-process
# (False) and on Ray (True). On a loaded machine the app can take longer to stop than the first.
RESTART_DELAYS_MS = {False: (500, 2_500, 10_000), True: (1_500, 5_000, 15_000)}


async def due_while_stopped(
    folder: Path, placement: Placement, arm: Callable[[TestApp, str, int], Awaitable[int]]
) -> tuple[str, int]:
    """Start the app, arm an alarm with ``arm(app, name, delay_ms)``, stop the app, wait past due.

    Returns the object's name and the alarm's time. An alarm that came due before the app had
    stopped proves nothing (it may have fired while the app ran), so then the next, longer delay
    is tried on a new object; only when every delay was too short does the test fail.
    """
    for attempt, delay_ms in enumerate(RESTART_DELAYS_MS[bool(placement)]):
        name = f"soon-{attempt}"
        async with started(folder, placement) as app:
            due = await arm(app, name, delay_ms)
        if placement:
            kill_hosts(folder)  # on Ray, hosts outlive the gateway: kill them to restart
        if now_ms() < due:
            while now_ms() < due + 200:  # it comes due while nothing runs
                await asyncio.sleep(0.05)
            return name, due
    pytest.fail("the app took longer to stop than every alarm delay tried")


async def test_alarms_survive_a_restart(alarms_dir: Path, placement: Placement) -> None:
    far: list[int] = []

    async def arm(app: TestApp, name: str, delay_ms: int) -> int:
        far.append(await app.env.CLOCK.get_by_name("far").set_in(3_600_000))
        due: int = await app.env.CLOCK.get_by_name(name).set_in(delay_ms)
        return due

    name, soon = await due_while_stopped(alarms_dir, placement, arm)
    restarted = now_ms()
    async with started(alarms_dir, placement) as app:
        soon_hex = app.env.CLOCK.id_from_name(name).hex
        # Wait on the index file alone: no event reaches the object until it has run.
        await poll(as_async(lambda: index_rows(app)), lambda rows: soon_hex not in rows, 30)
        first_call = now_ms()
        runs = await app.env.CLOCK.get_by_name(name).runs()
        assert len(runs) == 1
        assert runs[0]["scheduled_time"] == soon
        assert restarted <= runs[0]["at"] < first_call, "it ran only when called"
        assert await app.env.CLOCK.get_by_name("far").get_alarm() == far[-1]


async def test_a_dedicated_objects_alarm_fires_after_a_restart(local_alarms_dir: Path) -> None:
    add_binding(local_alarms_dir, "SOLO", "objects:Clock", placement="dedicated")

    async def arm(app: TestApp, name: str, delay_ms: int) -> int:
        solo = app.env.SOLO.get_by_name(name)
        due: int = await solo.set_in(delay_ms)
        assert index_rows(app, "SOLO")[solo.id.hex][0] == f"SOLO/object/{solo.id.hex}"
        return due

    name, due = await due_while_stopped(local_alarms_dir, {}, arm)
    async with started(local_alarms_dir, {}) as app:
        solo_hex = app.env.SOLO.id_from_name(name).hex
        await poll(as_async(lambda: index_rows(app, "SOLO")), lambda rows: solo_hex not in rows)
        first_call = now_ms()
        runs = await app.env.SOLO.get_by_name(name).runs()
        assert [r["scheduled_time"] for r in runs] == [due]
        assert runs[0]["at"] < first_call


async def test_an_alarm_committed_before_the_event_failed_still_fires(
    local_alarms_dir: Path,
) -> None:
    add_binding(local_alarms_dir, "TRICKY", "more_objects:Tricky")

    async with started(local_alarms_dir, {}) as app:
        tricky = app.env.TRICKY.get_by_name("committed")
        with pytest.raises(ObjectError, match="failed after committing an alarm"):
            # far enough ahead that a busy machine reads it back before it fires
            await tricky.arm_then_fail(1500)
        due = await tricky.get_alarm()
        assert due is not None  # committed: it is the object's alarm now
        assert index_rows(app, "TRICKY").get(tricky.id.hex, (None, None))[1] == due
        attempts = await poll(tricky.attempts, lambda attempts: len(attempts) >= 1, 15)
        assert attempts[0]["at"] >= due


# ---- 43: the harness runs an alarm now -----------------------------------------------------------


async def test_run_alarm_runs_a_set_alarm_now_once(app: TestApp) -> None:
    clock = app.env.CLOCK.get_by_name("now")
    await clock.plan(again_in_ms=None)
    due = await clock.set_in(600_000)
    assert await app.run_alarm("CLOCK", "now") is True
    runs = await clock.runs()
    assert len(runs) == 1
    assert runs[0]["scheduled_time"] == due
    assert runs[0]["retry_count"] == 0
    assert runs[0]["at"] < due
    assert await clock.get_alarm() is None
    assert clock.id.hex not in index_rows(app)
    assert await app.run_alarm("CLOCK", "now") is False
    assert len(await clock.runs()) == 1
    assert await app.run_alarm("CLOCK", "never-set") is False
    assert await app.env.CLOCK.get_by_name("never-set").runs() == []
    assert await app.run_alarm("PLAIN", "no-handler") is False


# ---- the per-binding alarm index --------------------------------------------------------------


@local_only
async def test_the_alarm_index_holds_a_row_until_the_alarm_has_run(app: TestApp) -> None:
    clock = app.env.CLOCK.get_by_name("indexed")
    # Both alarms far enough out that the checks between them land first on a loaded machine.
    reply = await app.http.post("/clock/indexed/alarm", params={"in": "1000"})
    assert reply.status_code == 200
    due = reply.json()["due"]
    path = layout.alarm_index_file(app.config.storage, "CLOCK")
    assert path.is_file()
    host, indexed_due = index_rows(app)[clock.id.hex]
    assert indexed_due == due
    assert host.startswith("CLOCK/shard/")
    later = await clock.set_in(1_200)  # replacing the alarm replaces the row
    assert index_rows(app)[clock.id.hex][1] == later
    await poll(clock.runs, lambda runs: len(runs) >= 1)
    # The run is seen once the handler's own commit() is, while the alarm event may still be
    # ending (an await away: another event may start meanwhile); the row goes at its end.
    await poll(as_async(lambda: index_rows(app)), lambda rows: clock.id.hex not in rows)
    runs = (await app.http.get("/clock/indexed/runs")).json()
    assert [r["scheduled_time"] for r in runs] == [later]


async def test_an_alarm_running_too_long_is_cancelled_and_retried(local_alarms_dir: Path) -> None:
    """Scenario 42, with alarm_seconds at 1 s instead of 15 minutes."""
    add_binding(local_alarms_dir, "SLEEPY", "more_objects:Sleepy")
    toml = local_alarms_dir / "raydo.toml"
    toml.write_text(toml.read_text() + "\n[limits]\nalarm_seconds = 1\n")

    async with started(local_alarms_dir, {}) as app:
        sleepy = app.env.SLEEPY.get_by_name("slow")
        await sleepy.arm(0)
        deadline = asyncio.get_running_loop().time() + 15
        while await sleepy.attempts() != [0, 1]:
            assert asyncio.get_running_loop().time() < deadline, await sleepy.attempts()
            await asyncio.sleep(0.2)
        # The retry (after about 2 s) finished quickly, so the alarm is done.
        assert await app.run_alarm("SLEEPY", "slow") is False
