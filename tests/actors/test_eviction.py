"""Eviction: idle objects and the least recently used lose their instance and their file handle;
the next event constructs them again from storage."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from raydo.actors import _live
from raydo.actors._host import Host
from raydo.actors.placement import LocalPlacement
from tests.actors.sample_objects import Counter

from ._support import Place, binding, make_spec, open_files_under, storage_is_open


def only_host(placement: LocalPlacement) -> Host:
    assert len(placement.hosts) == 1, placement.hosts
    return next(iter(placement.hosts.values()))


async def until(predicate: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_an_idle_object_is_evicted_and_comes_back_from_storage(
    place: Place, tmp_path: Path
) -> None:
    placement = place(binding("COUNTER", "Counter", idle_timeout_s=0.2))
    stub = placement.env.COUNTER.get_by_name("sleepy")
    assert await stub.increment() == 1
    assert await stub.memory() == 1
    assert await stub.memory() == 2
    host = only_host(placement)
    first = Counter.instances[0]
    assert host.live_objects == 1
    assert storage_is_open(first)
    assert open_files_under(tmp_path)
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    await asyncio.sleep(0.6)
    await until(lambda: host.live_objects == 0)  # by now, unless the machine crawls
    assert loop.time() - idle_since >= 0.2, "evicted before its idle timeout"
    assert host.live_ids() == []
    assert host.stats["evictions"] == 1
    assert not storage_is_open(first)
    for each in placement.hosts.values():
        each.wait_for_closes()  # files close on a background thread
    assert open_files_under(tmp_path) == []
    # the next event constructs it again: memory reset, storage kept
    assert await stub.memory() == 1
    assert Counter.constructed == 2
    assert Counter.instances[1] is not first
    assert await stub.increment() == 2
    assert host.live_objects == 1


async def test_activity_keeps_an_object_live(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter", idle_timeout_s=0.5))
    stub = placement.env.COUNTER.get_by_name("busy-bee")
    for _ in range(8):  # 0.8 s in all, more than the idle timeout
        await stub.memory()
        await asyncio.sleep(0.1)
    assert await stub.memory() == 9
    assert Counter.constructed == 1


async def test_the_live_bound_evicts_the_least_recently_used(place: Place, tmp_path: Path) -> None:
    placement = place(binding("COUNTER", "Counter", shards=1, max_live_objects=3))
    ns = placement.env.COUNTER
    stubs = {name: ns.get_by_name(name) for name in ("o1", "o2", "o3", "o4", "o5")}
    hexes = {name: stub.id.hex for name, stub in stubs.items()}
    for name in ("o1", "o2", "o3"):
        assert await stubs[name].increment() == 1
    host = only_host(placement)
    assert host.live_objects == 3
    assert await stubs["o1"].increment() == 2  # o1 is now the most recently used
    assert await stubs["o4"].increment() == 1
    assert host.live_objects == 3
    assert set(host.live_ids()) == {hexes["o3"], hexes["o1"], hexes["o4"]}
    assert await stubs["o5"].increment() == 1
    assert host.live_objects == 3
    assert host.live_ids() == [hexes["o1"], hexes["o4"], hexes["o5"]]
    assert host.stats["evictions"] == 2
    by_name = {inst.ctx.id.name: inst for inst in Counter.instances}
    assert not storage_is_open(by_name["o2"])
    assert not storage_is_open(by_name["o3"])
    assert all(storage_is_open(by_name[n]) for n in ("o1", "o4", "o5"))
    # every open file under the root belongs to a live object
    host.wait_for_closes()  # evicted files close on a background thread
    for path in open_files_under(tmp_path):
        assert any(hexes[n] in path for n in ("o1", "o4", "o5")), path
    # evicted objects come back with their storage, evicting others in turn
    assert await stubs["o2"].increment() == 2
    assert host.live_objects == 3
    assert hexes["o2"] in host.live_ids() and hexes["o1"] not in host.live_ids()
    assert Counter.constructed == 6


async def test_a_busy_object_is_not_evicted(place: Place, tmp_path: Path) -> None:
    Counter.gate, Counter.started = asyncio.Event(), asyncio.Event()
    placement = place(binding("COUNTER", "Counter", idle_timeout_s=0.1))
    stub = placement.env.COUNTER.get_by_name("working")
    call = asyncio.ensure_future(stub.slow())
    await asyncio.wait_for(Counter.started.wait(), 5)
    host = only_host(placement)
    hex_id = stub.id.hex
    assert host.evict(hex_id) is False
    await asyncio.sleep(0.35)  # well past the idle timeout: the sweeper must skip it
    assert host.live_ids() == [hex_id]
    assert host.evict(hex_id) is False
    Counter.gate.set()
    assert await call == "done"
    assert host.evict(hex_id) is True
    assert host.evict(hex_id) is False  # already gone
    assert host.live_objects == 0
    for each in placement.hosts.values():
        each.wait_for_closes()  # files close on a background thread
    assert open_files_under(tmp_path) == []
    assert await stub.read("slow") == 1
    assert Counter.constructed == 2


async def test_the_live_bound_spares_busy_objects_and_the_one_being_called(place: Place) -> None:
    """With every other object busy, the bound is exceeded for a while rather than evicting
    the object an event is arriving for."""

    Counter.gate, Counter.started = asyncio.Event(), asyncio.Event()
    placement = place(binding("COUNTER", "Counter", shards=1, max_live_objects=1))
    ns = placement.env.COUNTER
    busy = ns.get_by_name("busy")
    call = asyncio.ensure_future(busy.slow())
    await asyncio.wait_for(Counter.started.wait(), 5)
    other = ns.get_by_name("other")
    assert await other.increment() == 1
    assert await other.increment() == 2
    host = only_host(placement)
    assert set(host.live_ids()) == {busy.id.hex, other.id.hex}
    Counter.gate.set()
    assert await call == "done"
    # once nothing is busy, the next new object brings the host back under its bound
    assert await ns.get_by_name("third").increment() == 1
    assert host.live_ids() == [ns.id_from_name("third").hex]
    assert await other.increment() == 3


async def test_wait_until_keeps_an_object_from_idle_eviction(place: Place, tmp_path: Path) -> None:
    Counter.background = asyncio.Event()
    placement = place(binding("COUNTER", "Counter", idle_timeout_s=0.1))
    stub = placement.env.COUNTER.get_by_name("background")
    await stub.keep_alive()
    assert await stub.memory() == 1
    host = only_host(placement)
    await asyncio.sleep(0.4)
    assert host.live_objects == 1, "evicted while its wait_until was pending"
    assert host.evict(stub.id.hex) is False
    Counter.background.set()
    await until(lambda: host.live_objects == 0)
    for each in placement.hosts.values():
        each.wait_for_closes()  # files close on a background thread
    assert open_files_under(tmp_path) == []
    assert await stub.memory() == 1
    assert Counter.constructed == 2


async def test_eviction_closes_every_file(place: Place, tmp_path: Path) -> None:
    placement = place(binding("COUNTER", "Counter", shards=2, idle_timeout_s=0.3))
    ns = placement.env.COUNTER
    stubs = [ns.get_by_name(f"file-{i}") for i in range(6)]
    await asyncio.gather(*(s.increment() for s in stubs))
    live = sum(h.live_objects for h in placement.hosts.values())
    sqlite_files = {p for p in open_files_under(tmp_path) if p.endswith(".sqlite")}
    assert len(sqlite_files) == live == 6
    await until(lambda: all(h.live_objects == 0 for h in placement.hosts.values()))
    for each in placement.hosts.values():
        each.wait_for_closes()  # files close on a background thread
    assert open_files_under(tmp_path) == []
    assert not any(storage_is_open(inst) for inst in Counter.instances)
    assert await asyncio.gather(*(s.get() for s in stubs)) == [1] * 6


async def test_closing_the_placement_closes_every_file(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, binding("COUNTER", "Counter", shards=3))
    placement = LocalPlacement(spec)
    stubs = [placement.env.COUNTER.get_by_name(f"c{i}") for i in range(5)]
    await asyncio.gather(*(s.increment() for s in stubs))
    assert open_files_under(tmp_path)
    hosts = list(placement.hosts.values())
    await placement.close()
    assert placement.hosts == {}
    assert all(h.live_objects == 0 for h in hosts)
    assert open_files_under(tmp_path) == []


async def test_a_sweep_of_many_idle_objects_lets_live_events_run_between(
    place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replicated object's file closes on the loop, so the sweeper hands the loop back while
    it evicts: an event arriving mid-sweep is answered before the sweep ends."""
    monkeypatch.setattr(_live, "SWEEP_SLICE_S", 0.0)  # hand the loop back after each eviction
    placement = place(binding("COUNTER", "Counter", idle_timeout_s=3600, shards=1))
    names = [f"idle-{i}" for i in range(200)]
    await asyncio.gather(*(placement.env.COUNTER.get_by_name(n).increment() for n in names))
    host = only_host(placement)
    later = time.monotonic() + 7200  # when all 200 have been idle past their timeout
    sweep = asyncio.ensure_future(host.objects.evict_idle_in_slices(later))
    while host.stats["evictions"] == 0:
        await asyncio.sleep(0)
    assert await placement.env.COUNTER.get_by_name("arriving").increment() == 1
    answered_at = host.stats["evictions"]
    assert await sweep == len(names)
    assert answered_at < len(names), answered_at  # answered mid-sweep
    assert host.live_ids() == [placement.env.COUNTER.id_from_name("arriving").hex]
