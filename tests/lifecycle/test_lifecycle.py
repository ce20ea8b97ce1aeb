"""An object's life against a real host (scenarios 44-49 of the reference), in-process and on Ray:
eviction, resets (abort, handler errors, failed critical sections), failing constructors,
``wait_until`` and ``delete_all``.

raydo is stricter than workerd in one place, by design (DESIGN "Runtime model" 5): an exception
from a handler resets the object (its in-memory state is dropped), where workerd keeps it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from raydo.actors import ObjectError, ObjectReset
from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from raydo.storage import layout
from tests.lifecycle.support import add_binding, now_ms, set_clock_option, started
from tests.placements import Placement, local_only
from tests.polling import poll

T = TypeVar("T")

BROKEN_MARKER = "fragile-constructor-broken"  # more_objects.BROKEN_MARKER


def index_rows(app: TestApp, binding: str = "CLOCK") -> dict[str, int]:
    """The binding's alarm index, read from disk without going through any host."""
    path = layout.alarm_index_file(app.config.storage, binding)
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT object_hex, due_ms FROM alarms").fetchall())
    finally:
        conn.close()


def live_ids(app: TestApp) -> set[str]:
    """The objects with an instance in this process's hosts (in-process placement only)."""
    hosts = app.gateway.placement.hosts  # type: ignore[union-attr]
    return {object_hex for host in hosts.values() for object_hex in host.live_ids()}


async def live(app: TestApp) -> set[str]:
    return live_ids(app)


# ---- 44: eviction --------------------------------------------------------------------------------


async def test_evict_makes_the_next_call_construct_anew_with_storage_intact(app: TestApp) -> None:
    clock = app.env.CLOCK.get_by_name("evicted")
    await clock.plan(failures=4)
    due = await clock.set_in(600_000)
    assert await clock.remember() == 1
    assert await clock.remember() == 2
    assert await app.evict("CLOCK", "evicted") is True
    assert await clock.remember() == 1, "the instance outlived app.evict()"
    assert await clock.value("plan") == {"failures": 4, "again": None, "abort": None}
    assert await clock.get_alarm() == due


async def test_an_idle_object_is_evicted_and_comes_back_from_storage(
    local_alarms_dir: Path,
) -> None:
    set_clock_option(local_alarms_dir, "idle_timeout_s", 0.3)

    async with started(local_alarms_dir, {}) as app:
        clock = app.env.CLOCK.get_by_name("sleepy")
        await clock.plan(failures=4)
        due = await clock.set_in(600_000)
        assert await clock.remember() == 1
        assert await clock.remember() == 2
        idle_since = time.monotonic()
        assert clock.id.hex in live_ids(app)
        await poll(lambda: live(app), lambda ids: clock.id.hex not in ids, timeout=5)
        assert time.monotonic() - idle_since >= 0.3 * 0.9, "evicted before its idle timeout"
        assert await clock.remember() == 1, "the instance survived its eviction"
        assert await clock.value("plan") == {"failures": 4, "again": None, "abort": None}
        assert await clock.get_alarm() == due
        assert clock.id.hex in live_ids(app)
        # A pending alarm does not keep it in memory, and wakes it when due (far enough out
        # that the eviction, 0.3 s idle and a sweep, comes first on a loaded machine too).
        due = await clock.set_in(3000)
        await poll(lambda: live(app), lambda ids: clock.id.hex not in ids, timeout=5)
        assert now_ms() < due, "evicted only after the alarm was due: inconclusive"
        await poll(lambda: live(app), lambda ids: clock.id.hex in ids, timeout=5)
        runs = await clock.runs()
        assert [r["scheduled_time"] for r in runs] == [due]
        assert await clock.remember() == 1


WORK_S = 4.0
"""The wait_until work of the eviction test: its idle neighbour must be evicted within it."""


async def test_wait_until_keeps_an_object_from_idle_eviction_until_done(
    local_alarms_dir: Path,
) -> None:
    set_clock_option(local_alarms_dir, "idle_timeout_s", 0.3)

    async with started(local_alarms_dir, {}) as app:
        busy = app.env.CLOCK.get_by_name("busy")
        idle = app.env.CLOCK.get_by_name("idle")
        assert await busy.remember() == 1
        assert await idle.remember() == 1
        started_at = time.monotonic()
        # Work long enough that the idle one's eviction comes well within it, loaded or not.
        await busy.background(WORK_S)
        # The idle one goes after its 0.3 s; the busy one stays while its work runs.
        await poll(lambda: live(app), lambda ids: idle.id.hex not in ids, timeout=5)
        await asyncio.sleep(0.3)
        assert time.monotonic() - started_at < WORK_S, "the machine is too slow for this test"
        assert busy.id.hex in live_ids(app)
        assert await busy.remember() == 2, "evicted while wait_until work was running"
        # Once the work is done it is idle like any other and goes in its turn.
        await poll(lambda: live(app), lambda ids: busy.id.hex not in ids, timeout=WORK_S + 5)
        assert time.monotonic() - started_at >= WORK_S
        assert await busy.remember() == 1
        assert await idle.remember() == 1


# ---- 47: abort through a stub ---------------------------------------------------------------


async def test_abort_resets_the_object_and_breaks_the_stub(app: TestApp) -> None:
    stub = app.env.CLOCK.get_by_name("aborted")
    await stub.plan(failures=3)
    assert await stub.remember() == 1
    assert await stub.remember() == 2
    with pytest.raises(ObjectReset) as caught:
        await stub.write_then_abort()
    assert "stop now" in str(caught.value)
    for _ in range(2):
        with pytest.raises(ObjectReset) as again:
            await stub.remember()
        assert "get a new stub" in str(again.value)
    fresh = app.env.CLOCK.get_by_name("aborted")
    # 1, not 2 or 3: the instance was reset, and the broken stub's calls never arrived.
    assert await fresh.remember() == 1
    assert await fresh.value("aborted-write") is None
    assert await fresh.value("plan") == {"failures": 3, "again": None, "abort": None}
    assert await fresh.remember() == 2


# ---- 48: an exception in a handler ----------------------------------------------------------


async def test_a_handler_exception_reaches_the_caller_and_resets_the_object(app: TestApp) -> None:
    stub = app.env.CLOCK.get_by_name("throws")
    await stub.plan(failures=1)
    assert await stub.remember() == 1
    assert await stub.remember() == 2
    with pytest.raises(ObjectError) as caught:
        await stub.set_at("whenever")  # set_alarm() raises TypeError in the handler
    error = caught.value
    assert error.remote is True
    assert error.retryable is False
    assert error.type_name == "TypeError"
    assert "set_alarm() takes a datetime or epoch milliseconds" in error.message
    # The stub is not broken (that is for aborts), the instance was reset (raydo's
    # documented rule, stricter than workerd's), and committed storage is intact.
    assert await stub.remember() == 1
    assert await stub.value("plan") == {"failures": 1, "again": None, "abort": None}
    assert await stub.get_alarm() is None


# ---- 49: a failing constructor --------------------------------------------------------------


async def test_a_failing_constructor_fails_every_call_until_fixed_and_leaks_nothing(
    alarms_dir: Path, placement: Placement
) -> None:
    add_binding(alarms_dir, "FRAGILE", "more_objects:Fragile")

    async with started(alarms_dir, placement) as app:
        marker = app.config.storage / BROKEN_MARKER
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        stub = app.env.FRAGILE.get_by_name("fragile")
        calls = [stub.remember, stub.remember, lambda: stub.put("key", 1)]
        calls.append(app.env.FRAGILE.get_by_name("fragile").remember)  # a new stub too
        for call in calls:
            with pytest.raises(ObjectError) as caught:
                await call()
            assert caught.value.remote is True
            assert caught.value.type_name == "RuntimeError"
            assert "constructor" in str(caught.value)
            assert "broken on purpose" in str(caught.value)
        marker.unlink()
        # Fixed: the same stub works, and neither the constructor's write nor its
        # in-memory state (memory = 100) outlived the failures.
        assert await stub.remember() == 1
        assert await stub.value("half-built") is None
        assert await stub.value("key") is None
        await stub.put("key", 2)
        assert await stub.value("key") == 2
        assert await stub.remember() == 2


# ---- block_concurrency_while and delete_all ---------------------------------------------------


@local_only
async def test_block_concurrency_while_returns_its_value_and_a_failure_resets(app: TestApp) -> None:
    fine = app.env.CLOCK.get_by_name("critical-ok")
    assert await fine.guarded(False) == "ok"
    assert await fine.value("guarded") is True

    failing = app.env.CLOCK.get_by_name("critical-fails")
    assert await failing.remember() == 1
    # The handler catches the ValueError and returns "caught", yet the event fails.
    with pytest.raises(ObjectReset) as caught:
        await failing.guarded(True)
    assert "block_concurrency_while" in str(caught.value)
    fresh = app.env.CLOCK.get_by_name("critical-fails")
    assert await fresh.value("guarded") is None, "the critical section's write stayed"
    assert await fresh.remember() == 1


@local_only
async def test_delete_all_removes_the_alarm(app: TestApp) -> None:
    clock = app.env.CLOCK.get_by_name("wiped")
    await clock.plan()
    due = await clock.set_in(300)
    assert due is not None
    assert index_rows(app)[clock.id.hex] == due
    await clock.wipe()
    assert await clock.get_alarm() is None
    assert await clock.value("plan") is None
    assert clock.id.hex not in index_rows(app)
    while now_ms() < due + 300:
        await asyncio.sleep(0.05)
    assert await clock.runs() == []
    assert await app.run_alarm("CLOCK", "wiped") is False


# ---- the harness: two apps in one process -------------------------------------------------------


async def test_two_apps_with_the_same_module_names_start_in_one_process(
    app_copy: Callable[[str], Path],
) -> None:
    probe, alarms = app_copy("probe"), app_copy("alarms")

    async with start_app(probe, storage=CONFIGURED_STORAGE) as app:
        assert await app.env.PROBE.get_by_name("p").increment() == 1
    async with start_app(
        alarms, storage=CONFIGURED_STORAGE
    ) as app:  # a second app, same module names
        assert await app.env.CLOCK.get_by_name("c").remember() == 1
