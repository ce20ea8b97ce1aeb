"""Turns: one event at a time per object, in order, reentrant along a call chain, bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from raydo.actors import CallRefused, HostUnavailable, ObjectError, Overloaded
from raydo.actors.types import Event, EventKind
from raydo.storage import codec
from tests.actors.sample_objects import Counter, Relay

from ._support import Place, binding, files_under, make_spec, placed


async def test_concurrent_increments_never_interleave(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("hot")
    # the handler yields between its read and its write: exclusive turns keep this exact
    results = await asyncio.gather(*(stub.increment() for _ in range(200)))
    assert sorted(results) == list(range(1, 201))
    assert await stub.get() == 200
    assert Counter.constructed == 1


async def test_concurrent_increments_from_many_stubs(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    object_id = ns.id_from_name("hot")
    stubs = [
        ns.get(object_id),
        ns.get_by_name("hot"),
        ns.get(ns.id_from_string(str(object_id))),
    ]
    calls = [stubs[i % 3].increment(2) for i in range(150)]
    results = await asyncio.gather(*calls)
    assert sorted(results) == list(range(2, 301, 2))
    assert await stubs[0].get() == 300


async def test_a_callers_events_run_in_call_order(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("ordered")
    await asyncio.gather(*(stub.append(i) for i in range(500)))
    assert await stub.log() == list(range(500))
    # the results also come back in call order
    results = await asyncio.gather(*(stub.increment() for _ in range(100)))
    assert results == list(range(1, 101))


async def test_a_call_chain_back_into_a_busy_object_is_let_in(place: Place) -> None:
    placement = place(binding("RELAY", "Relay"))
    a = placement.env.RELAY.get_by_name("a")
    b = placement.env.RELAY.get_by_name("b")
    result = await asyncio.wait_for(a.ping("b"), 5)
    assert result == [1, "b", "pong after callback from b"]
    assert await a.dump() == {
        "a_after": "pong after callback from b",
        "a_before": 1,
        "called_back": "b",
    }
    assert await b.dump() == {"ponged": "a"}
    # and it works again, with both objects live
    assert await asyncio.wait_for(b.ping("a"), 5) == [1, "a", "pong after callback from a"]


async def test_a_call_outside_the_chain_waits_for_the_turn(place: Place) -> None:
    """An object awaiting another object is still busy: other callers queue behind it."""

    Relay.gate, Relay.waiting = asyncio.Event(), asyncio.Event()
    placement = place(binding("RELAY", "Relay"))
    a = placement.env.RELAY.get_by_name("a")
    slow = asyncio.ensure_future(a.call_and_wait("b"))
    await asyncio.wait_for(Relay.waiting.wait(), 5)
    reader = asyncio.ensure_future(a.read("x"))
    await asyncio.sleep(0.05)
    assert not reader.done(), "a second event ran inside a busy turn"
    Relay.gate.set()
    assert await slow == "opened"
    # the read ran after the whole turn, not in the middle of it
    assert await reader == "after the slow call"


async def test_a_full_mailbox_refuses_at_once(place: Place) -> None:
    Counter.gate, Counter.started = asyncio.Event(), asyncio.Event()
    placement = place(binding("COUNTER", "Counter", mailbox_limit=5))
    stub = placement.env.COUNTER.get_by_name("busy")
    running = asyncio.ensure_future(stub.slow())
    await asyncio.wait_for(Counter.started.wait(), 5)
    # one running, five queue, the rest are refused
    more = [asyncio.ensure_future(stub.slow()) for _ in range(9)]
    done, pending = await asyncio.wait(more, timeout=0.2)
    assert len(pending) == 5 and set(pending) == set(more[:5])
    assert set(done) == set(more[5:])
    for refused in more[5:]:
        err = refused.exception()
        assert isinstance(err, Overloaded)
        assert err.overloaded is True
        assert err.retryable is False
        assert "overloaded" in str(err) and "mailbox_limit 5" in str(err)
    assert not running.done()
    host = next(iter(placement.hosts.values()))
    assert host.stats["overloads"] == 4
    Counter.gate.set()
    assert await running == "done"
    assert await asyncio.gather(*pending) == ["done"] * 5
    # only the six accepted events ran
    assert await stub.read("slow") == 6
    assert await stub.slow() == "done"


async def test_events_that_wait_past_queue_wait_seconds_are_dropped_never_run(
    place: Place,
) -> None:
    Counter.gate, Counter.started = asyncio.Event(), asyncio.Event()
    placement = place(binding("COUNTER", "Counter", queue_wait_seconds=0.3))
    stub = placement.env.COUNTER.get_by_name("slow-to-answer")
    running = asyncio.ensure_future(stub.slow())
    await asyncio.wait_for(Counter.started.wait(), 5)
    behind = [asyncio.ensure_future(stub.slow()) for _ in range(5)]
    await asyncio.sleep(0.1)
    later = asyncio.ensure_future(stub.slow())  # admitted 0.1 s after the others
    loop = asyncio.get_running_loop()
    queued_at = loop.time()
    done, _ = await asyncio.wait(behind, timeout=5)
    waited = loop.time() - queued_at
    assert set(done) == set(behind), "every caller behind the slow event got an answer"
    assert 0.1 <= waited < 2, f"answered after {waited:.2f} s, not at the deadline"
    assert not later.done(), "its own deadline is later"
    await asyncio.wait_for(asyncio.wait([later]), 5)
    for dropped in [*behind, later]:
        err = dropped.exception()
        assert isinstance(err, Overloaded) and err.retryable is False
        assert "queue_wait_seconds 0.3" in str(err) and "dropped" in str(err)
    assert not running.done(), "the slow event itself runs on"
    host = next(iter(placement.hosts.values()))
    assert host.stats["overloads"] == 6
    Counter.gate.set()
    assert await running == "done"
    # Only the event that had started ran; the dropped ones never run later.
    await asyncio.sleep(0.1)
    assert await stub.read("slow") == 1
    assert await stub.slow() == "done"
    assert await stub.read("slow") == 2


async def test_a_write_before_a_call_is_committed_before_the_call_leaves(place: Place) -> None:
    placement = place(binding("RELAY", "Relay"))
    a = placement.env.RELAY.get_by_name("a")
    b = placement.env.RELAY.get_by_name("b")
    assert await b.noop() == 1
    seen, error_type, error_message = await a.write_then_call("b", "k")
    # b read a's file with its own connection: the write was already committed
    assert seen == "committed before the call"
    assert (error_type, error_message) == ("ZeroDivisionError", "B exploded")
    assert await a.read("k") == "committed before the call"
    assert await b.read("exploded") is None


async def test_an_exception_after_a_call_rolls_back_only_the_later_write(place: Place) -> None:
    placement = place(binding("RELAY", "Relay"))
    a = placement.env.RELAY.get_by_name("a")
    b = placement.env.RELAY.get_by_name("b")
    with pytest.raises(ObjectError) as info:
        await a.write_call_write_raise("b")
    assert info.value.type_name == "KeyError"
    assert "after the call" in info.value.message
    assert await a.read("first") == 1
    assert await a.read("second") is None
    assert await b.read("noops") == 1


async def test_calling_an_object_inside_a_transaction_is_refused(place: Place) -> None:
    placement = place(binding("RELAY", "Relay"))
    a = placement.env.RELAY.get_by_name("a")
    b = placement.env.RELAY.get_by_name("b")
    assert await a.noop() == 1
    module, name, message, in_tx = await a.call_in_transaction("b")
    assert (module, name) == ("raydo.storage.errors", "TransactionError")
    assert "cannot call another object inside storage.transaction()" in message
    assert in_tx is None  # the transaction's write was rolled back with it
    assert await b.read("noops") is None  # b never ran
    host = next(iter(placement.hosts.values()))
    assert host.stats["activations"] == 2  # a, and b only for the read above
    assert await a.read("noops") == 1
    # the same as the object's very first write (the transaction made the KV table)
    fresh = placement.env.RELAY.get_by_name("fresh")
    module, name, _, in_tx = await fresh.call_in_transaction("b")
    assert (name, in_tx) == ("TransactionError", None)
    assert await fresh.noop() == 1


# ---- host intake ----------------------------------------------------------------------------


def rpc_event(hex_id: str, method: str, *args: Any, caller: str, seq: int, **kw: Any) -> Event:
    payload = [method, codec.encode([list(args), {}])]
    return Event(
        kw.get("binding", "COUNTER"),
        hex_id,
        None,
        f"chain-{caller}-{seq}",
        EventKind.RPC,
        payload,
        caller=caller,
        seq=seq,
    )


async def test_the_host_restores_each_callers_order(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, binding("COUNTER", "Counter"))
    async with placed(spec) as placement:
        ns = placement.env.COUNTER
        object_id = ns.id_from_name("intake")
        key = spec.host_for(spec.binding("COUNTER"), object_id.hex)
        host = placement.host(key)
        later = host.deliver(rpc_event(object_id.hex, "append", 2, caller="c1", seq=2))
        await asyncio.sleep(0.02)
        assert not later.done(), "seq 2 ran before 0 and 1 arrived"
        assert host.live_objects == 0
        first = host.deliver(rpc_event(object_id.hex, "append", 0, caller="c1", seq=0))
        second = host.deliver(rpc_event(object_id.hex, "append", 1, caller="c1", seq=1))
        # another caller's numbering is its own
        other = host.deliver(rpc_event(object_id.hex, "append", 10, caller="c2", seq=0))
        replies = await asyncio.gather(later, first, second, other)
        assert [codec.decode(r) for r in replies] == [None] * 4
        assert await ns.get(object_id).log() == [0, 1, 2, 10]

        duplicate = host.deliver(rpc_event(object_id.hex, "append", 99, caller="c1", seq=1))
        with pytest.raises(CallRefused, match="duplicate or out of window"):
            await duplicate
        stale = host.deliver(rpc_event(object_id.hex, "append", 99, caller="c2", seq=0))
        with pytest.raises(CallRefused, match="duplicate"):
            await stale
        assert await ns.get(object_id).log() == [0, 1, 2, 10]

        # a caller that goes away fails the events held for it
        held = host.deliver(rpc_event(object_id.hex, "append", 99, caller="c3", seq=4))
        host.forget_caller("c3")
        with pytest.raises(HostUnavailable) as info:
            await held
        assert info.value.retryable is False
        assert await ns.get(object_id).log() == [0, 1, 2, 10]


async def test_a_duplicate_of_a_held_event_is_refused(tmp_path: Path) -> None:
    """A seq already waiting for its turn is a duplicate too: the first keeps its place."""

    spec = make_spec(tmp_path, binding("COUNTER", "Counter"))
    async with placed(spec) as placement:
        object_id = placement.env.COUNTER.id_from_name("held")
        host = placement.host(spec.host_for(spec.binding("COUNTER"), object_id.hex))
        held = host.deliver(rpc_event(object_id.hex, "append", 1, caller="c", seq=1))
        again = host.deliver(rpc_event(object_id.hex, "append", 99, caller="c", seq=1))
        with pytest.raises(CallRefused, match="duplicate"):
            await asyncio.wait_for(again, 1)
        assert not held.done()
        first = host.deliver(rpc_event(object_id.hex, "append", 0, caller="c", seq=0))
        await asyncio.wait_for(asyncio.gather(first, held), 2)
        assert await placement.env.COUNTER.get(object_id).log() == [0, 1]


async def test_the_host_refuses_ids_it_does_not_host(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, binding("COUNTER", "Counter", shards=4), binding("OTHER", "Counter"))
    async with placed(spec) as placement:
        ns = placement.env.COUNTER
        counter_binding = spec.binding("COUNTER")
        mine = ns.id_from_name("home")
        key = spec.host_for(counter_binding, mine.hex)
        host = placement.host(key)
        elsewhere = next(
            i
            for i in (ns.id_from_name(f"n{n}") for n in range(100))
            if spec.host_for(counter_binding, i.hex) != key
        )
        foreign = placement.env.OTHER.id_from_name("home")
        cases = [
            (rpc_event(foreign.hex, "increment", caller="x", seq=0), "does not belong"),
            (
                rpc_event(mine.hex, "increment", caller="y", seq=0, binding="OTHER"),
                "does not belong",
            ),
            (rpc_event("0" * 64, "increment", caller="z", seq=0), "does not belong"),
            (rpc_event("nothex", "increment", caller="w", seq=0), "does not belong"),
            (rpc_event(elsewhere.hex, "increment", caller="v", seq=0), "is not hosted by"),
        ]
        for event, message in cases:
            with pytest.raises(CallRefused, match=message):
                await host.deliver(event)
        assert host.live_objects == 0
        assert host.stats["activations"] == 0
        assert files_under(tmp_path) == []
        # the host still serves its own ids
        reply = await host.deliver(rpc_event(mine.hex, "increment", caller="u", seq=0))
        assert codec.decode(reply) == 1


async def test_malformed_rpc_events_are_refused(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, binding("COUNTER", "Counter"))
    async with placed(spec) as placement:
        object_id = placement.env.COUNTER.id_from_name("m")
        host = placement.host(spec.host_for(spec.binding("COUNTER"), object_id.hex))
        bad_payloads = [
            ("not a list", "malformed RPC event"),
            (["increment"], "malformed RPC event"),
            (["increment", b"\xc1"], "malformed RPC arguments"),
            (["increment", codec.encode([[], {"not an identifier": 1}])], "identifiers"),
            (["increment", codec.encode([[], {1: 1}])], "identifiers"),
            (["increment", codec.encode(5)], "malformed RPC arguments"),
        ]
        for seq, (payload, message) in enumerate(bad_payloads):
            event = Event("COUNTER", object_id.hex, None, f"c{seq}", EventKind.RPC, payload)
            event.caller, event.seq = "m", seq
            with pytest.raises(CallRefused, match=message):
                await host.deliver(event)
        assert host.stats["activations"] == 0
        assert files_under(tmp_path) == []
