"""The same guarantees on both placements: in-process hosts and hosts in Ray actors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray

from raydo.actors import CallRefused, HostUnavailable, ObjectError, Overloaded, RuntimeSpec
from raydo.actors.placement import LocalPlacement, ray_placement
from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from tests.cluster import RayCluster
from tests.placements import Placement


@pytest.fixture
async def env(
    placement: Placement,
    app_copy: Callable[[str], Path],
    kill_hosts_after: Callable[[Path], Path],
) -> AsyncIterator[Any]:
    """The probe app's env on the test's placement; closed after the test, its Ray hosts killed."""
    app_dir = app_copy("probe")
    spec = runtime_spec(load_config(app_dir))
    if placement:
        kill_hosts_after(app_dir)
    made = ray_placement(spec) if placement else LocalPlacement(spec)
    yield made.env
    await made.close()


async def test_200_concurrent_increments_end_at_200(env: Any) -> None:
    stub = env.PROBE.get_by_name("hot")
    results = []
    for _ in range(10):  # 10 waves of 20: the probe's mailbox holds 20
        results += await asyncio.gather(*(stub.increment() for _ in range(20)))
    assert sorted(results) == list(range(1, 201))
    assert await stub.value() == 200


async def test_a_callers_events_run_in_the_order_it_sent_them(env: Any) -> None:
    stub = env.PROBE.get_by_name("ordered")
    for wave in range(5):
        await asyncio.gather(*(stub.append(wave * 20 + i) for i in range(20)))
    assert await stub.items() == list(range(100))


async def test_a_call_back_into_the_calling_object_is_let_in(env: Any) -> None:
    reply = await asyncio.wait_for(env.PROBE.get_by_name("a").call_peer("b"), 20)
    assert reply == ["a", "a"]


async def test_a_full_mailbox_refuses_at_once(env: Any) -> None:
    stub = env.PROBE.get_by_name("busy")
    calls = [stub.sleep(0.05) for _ in range(30)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    overloaded = [r for r in results if isinstance(r, Overloaded)]
    # 20 queue (mailbox_limit), perhaps one more already running; the rest are refused.
    assert results.count("slept") in (20, 21)
    assert len(overloaded) == 30 - results.count("slept")
    assert all(e.overloaded and not e.retryable for e in overloaded)
    assert "mailbox_limit 20" in str(overloaded[0])


async def test_an_exception_rolls_back_and_resets_the_instance(env: Any) -> None:
    stub = env.PROBE.get_by_name("fragile")
    await stub.increment()
    assert await stub.seen() == 1
    assert await stub.seen() == 2
    with pytest.raises(ObjectError) as caught:
        await stub.fail_after_write()
    assert caught.value.type_name == "RuntimeError"
    assert caught.value.remote
    assert await stub.value() == 1  # the failed event's write is gone
    assert await stub.seen() == 1  # a new instance


async def test_refusals_name_the_problem(env: Any) -> None:
    stub = env.PROBE.get_by_name("refusals")
    with pytest.raises(CallRefused, match="has no method 'nope'"):
        await stub.nope()
    with pytest.raises(CallRefused, match="private"):
        await stub._secret()
    with pytest.raises(CallRefused, match="reserved"):
        await stub.alarm()


async def test_dedicated_placement_gives_each_object_its_own_actor(
    ray_cluster: RayCluster,
    app_copy: Callable[[str], Path],
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app = kill_hosts_after(app_copy("probe"))
    toml = app / "raydo.toml"
    toml.write_text(toml.read_text().replace("shards = 1", 'placement = "dedicated"'))
    spec = runtime_spec(load_config(app))

    placement = ray_placement(spec)
    try:
        pid_a = await placement.env.PROBE.get_by_name("a").pid()
        pid_b = await placement.env.PROBE.get_by_name("b").pid()
        assert await placement.env.PROBE.get_by_name("a").increment() == 1
    finally:
        await placement.close()
    assert pid_a != pid_b
    names = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}
    assert sum(f"raydo:{spec.app_name}:PROBE/object/" in n for n in names) == 2


async def test_a_host_process_carries_its_actor_name_in_its_title(
    ray_cluster: RayCluster,
    app_copy: Callable[[str], Path],
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app = kill_hosts_after(app_copy("probe"))
    spec = runtime_spec(load_config(app))
    placement = ray_placement(spec)
    try:
        stub = placement.env.PROBE.get_by_name("titled")
        pid = await stub.pid()
        await stub.increment()  # a call after the first: Ray sets the title around each
    finally:
        await placement.close()
    title = " ".join(psutil.Process(pid).cmdline()).strip()  # the title is padded
    # Ray's own part (ray::HostActor, a method while one runs), then which host this is.
    assert title.startswith("ray::HostActor"), title
    assert title.endswith(f" [raydo:{spec.app_name}:PROBE/shard/0]"), title


async def test_a_host_port_refuses_strangers_and_keeps_serving(
    ray_cluster: RayCluster,
    app_copy: Callable[[str], Path],
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    spec: RuntimeSpec = runtime_spec(load_config(kill_hosts_after(app_copy("probe"))))

    placement = ray_placement(spec)
    try:
        stub = placement.env.PROBE.get_by_name("guarded")
        assert await stub.increment() == 1
        key = spec.host_for(spec.bindings[0], stub.id.hex)
        address, port, _token = ray.get(placement.handle(key).endpoint.remote())
        for hostile in (
            b"\x93\x00\xa5wrong\xa1x",  # HELLO with a wrong token
            b"\xc1\xc1\xc1garbage",  # not msgpack
            b"\xdd\xff\xff\xff\xff",  # an array claiming 4 billion items
            b"\x99\x01\x00\x00\xa5PROBE",  # an EVENT before HELLO
        ):
            with socket.create_connection((address, port), timeout=5) as sock:
                sock.sendall(hostile)
                sock.settimeout(5)
                assert sock.recv(100) == b""  # closed on us, no reply
        assert await stub.increment() == 2
    finally:
        await placement.close()


async def test_an_unreachable_host_is_a_retryable_error(tmp_path: Path) -> None:
    """A link to a port nobody serves fails as retryable: the event was never sent."""
    from raydo.actors._wire import HostLink
    from raydo.storage.limits import DEFAULT_LIMITS

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        await HostLink.open("127.0.0.1", port, "t", "nobody", DEFAULT_LIMITS, timeout=2)
    assert HostUnavailable("x", retryable=True).retryable
