"""Gates mode, Cloudflare's reference scenarios 7-10 and 18 (``durable-objects.md`` §3), in
process and on Ray: events interleave at awaits other than storage, never inside storage
calls, transactions or ``block_concurrency_while``; a long poll works, and in strict mode
fails with a clear error after a bounded wait."""

from __future__ import annotations

import asyncio

import pytest

from raydo.actors import ObjectReset, Overloaded
from raydo.gateway.testing import TestApp
from tests.polling import poll


async def test_scenario_7_simultaneous_calls_to_a_new_object_build_it_once(
    app: TestApp, name: str
) -> None:
    room = app.env.GATED.get_by_name(name)
    results = await asyncio.gather(*(room.increment() for _ in range(3)))
    assert results == [0, 1, 2]
    assert await room.constructions() == 1


async def test_scenario_8_no_lost_update_around_an_await(app: TestApp, name: str) -> None:
    room = app.env.GATED.get_by_name(name)
    # Awaits of storage (coroutines around synchronous calls) never suspend.
    await asyncio.gather(room.add_awaiting_storage("plain"), room.add_awaiting_storage("plain"))
    # A real await inside a transaction or a critical section holds the others back.
    await asyncio.gather(room.add_in_transaction("txn", 0.1), room.add_in_transaction("txn", 0.1))
    await asyncio.gather(room.add_in_section("bcw", 0.1), room.add_in_section("bcw", 0.1))
    assert [await room.get(key) for key in ("plain", "txn", "bcw")] == [2, 2, 2]
    strict = app.env.STRICT.get_by_name(name)  # valid in strict mode too (trivially)
    await asyncio.gather(strict.add_in_section("bcw", 0.1), strict.add_in_section("bcw", 0.1))
    assert await strict.get("bcw") == 2


async def test_a_critical_section_that_raises_resets_the_object(app: TestApp, name: str) -> None:
    room = app.env.GATED.get_by_name(name)
    assert await room.increment() == 0
    polled = asyncio.ensure_future(room.poll())  # another event, waiting on the instance
    await poll(room.waiting, lambda waiting: waiting == 1)
    with pytest.raises(ObjectReset, match="block_concurrency_while"):
        await room.fail_in_section()  # it caught the error: the event fails all the same
    with pytest.raises(ObjectReset, match="reset by another of its events"):
        await polled  # the instance it waited on is gone
    again = app.env.GATED.get_by_name(name)
    assert await again.get() == 1  # the section's write rolled back
    assert await again.constructions() == 2  # built anew


async def test_scenario_9_another_event_runs_while_one_awaits_a_call_out(
    app: TestApp, name: str
) -> None:
    room = app.env.GATED.get_by_name(name)
    token = f"{name}-9"
    a = asyncio.ensure_future(room.read_then_call(token))
    await poll(room.trace, lambda trace: trace == ["A read"])
    assert await room.bump() == 1  # B ran and answered while A awaits the upstream
    assert not a.done()
    await app.env.UPSTREAM.get_by_name("u").release(token)
    assert await a == 0  # A read before B: its write is the later one (no gate across I/O)
    assert await room.trace() == ["A read", "B", "A write"]
    assert await room.get() == 1


async def test_scenario_10_a_constructor_critical_section_holds_back_events(
    app: TestApp, name: str
) -> None:
    for binding in ("LOADER", "STRICT_LOADER"):
        loader = getattr(app.env, binding).get_by_name(name)
        states = await asyncio.gather(*(loader.state() for _ in range(5)))
        assert states == [1] * 5, binding  # every one saw the initialized state


async def test_scenario_18_calls_are_observed_in_call_order(app: TestApp, name: str) -> None:
    room = app.env.GATED.get_by_name(name)
    await asyncio.gather(*(room.append(i) for i in range(30)))
    assert await room.get("log") == list(range(30))


async def test_a_long_poll_is_answered_by_a_later_event(app: TestApp, name: str) -> None:
    for binding in ("GATED", "BY_CLASS"):  # the binding's key, and the class's attribute
        room = getattr(app.env, binding).get_by_name(name)
        polled = asyncio.ensure_future(room.poll())
        await poll(room.waiting, lambda waiting: waiting == 1)
        assert await room.post("news") == 1
        assert await polled == "news"


async def test_in_strict_mode_a_long_poll_fails_clearly_after_a_bounded_wait(
    app: TestApp, name: str
) -> None:
    room = app.env.STRICT.get_by_name(name)  # queue_wait_seconds 1, event_seconds 3
    polled = asyncio.ensure_future(room.poll())
    await asyncio.sleep(0.2)  # the poll holds the object
    with pytest.raises(Overloaded) as refused:
        await room.post("news")  # waits behind the poll, which waits for it
    assert 'concurrency = "strict"' in str(refused.value)
    assert 'concurrency = "gates"' in str(refused.value)
    with pytest.raises(ObjectReset) as stopped:
        await polled
    assert stopped.value.limit == "event_seconds"
    again = app.env.STRICT.get_by_name(name)  # a reset breaks the stub that saw it
    assert await again.increment() == 0  # it answers again (built anew: the first
    assert await again.constructions() == 1  # construction's write rolled back with it)
