"""Edges of turns found in review: work that outlives its event, and calls on one chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from raydo.actors import CallRefused, ObjectError, RuntimeSpec
from raydo.actors.placement import LocalPlacement

from .edge_objects import Edgy

ROOT = str(Path(__file__).resolve().parents[2])


def spec(tmp_path: Path) -> RuntimeSpec:
    from raydo.actors import BindingSpec

    return RuntimeSpec(
        "edges", ROOT, str(tmp_path), (BindingSpec("EDGY", "tests.actors.edge_objects:Edgy"),)
    )


@pytest.fixture
async def placement(tmp_path: Path) -> AsyncIterator[LocalPlacement]:
    """In-process hosts for ``Edgy``, closed when the test ends."""
    placement = LocalPlacement(spec(tmp_path))
    yield placement
    await placement.close()


async def test_a_task_that_outlives_its_event_does_not_commit_a_later_one(
    placement: LocalPlacement,
) -> None:
    a = placement.env.EDGY.get_by_name("a")
    await a.fire_and_forget("b")
    with pytest.raises(ObjectError, match="fails after"):
        await a.slow_write_then_fail()
    assert await a.value("x") is None  # the stale task's call did not commit it


async def test_writes_from_work_outside_any_event_are_refused(placement: LocalPlacement) -> None:
    a = placement.env.EDGY.get_by_name("bg")
    await a.write_later()
    await asyncio.sleep(0.2)
    assert "inside an event" in Edgy.background_error
    assert await a.value("bg") is None


async def test_two_calls_on_one_chain_do_not_run_at_once(placement: LocalPlacement) -> None:
    Edgy.active = Edgy.most_active = 0
    most = await placement.env.EDGY.get_by_name("caller").two_calls_at_once("callee")
    assert most == 1


async def test_a_malformed_control_event_is_refused_and_the_queue_goes_on(
    placement: LocalPlacement,
) -> None:
    ns = placement.env.EDGY
    target = ns.id_from_name("c")
    with pytest.raises(CallRefused, match="malformed"):
        await ns.control(target, "sql", "SELECT 1", 5)
    assert await ns.get(target).ping() == "pong"


async def test_a_response_without_a_body_is_a_clear_error(tmp_path: Path) -> None:
    from raydo.actors import BindingSpec

    filer = RuntimeSpec(
        "edges", ROOT, str(tmp_path), (BindingSpec("FILER", "tests.actors.edge_objects:Filer"),)
    )

    placement = LocalPlacement(filer)
    try:
        with pytest.raises(ObjectError, match="FileResponse, which has no body"):
            await placement.env.FILER.get_by_name("f").fetch("/x")
    finally:
        await placement.close()


async def test_a_closed_placement_makes_no_new_hosts(tmp_path: Path) -> None:
    from raydo.actors import HostUnavailable

    placement = LocalPlacement(spec(tmp_path))
    await placement.close()
    with pytest.raises(HostUnavailable, match="closed"):
        await placement.env.EDGY.get_by_name("late").ping()


async def test_gateway_links_forget_closed_sockets_and_expire_unknown_gateways() -> None:
    from raydo.actors._payloads import ClosePush, SendPush
    from raydo.actors.websockets import GatewayLinks
    from raydo.actors.websockets import _links as _gateways

    lost: list[tuple[str, str]] = []
    links = GatewayLinks(lambda h, s: lost.append((h, s)))
    sent: list[list[object]] = []
    links.attach("g1", sent.append)
    links.holds("g1", "obj", "s1")
    links.holds("g1", "obj", "s2")
    links.deliver("g1", ClosePush("obj", ["s1"], 1000, ""))  # the object closed s1 itself
    assert sent == [["close", "obj", ["s1"], 1000, ""]]
    _gateways.GATEWAY_GRACE_S, grace = 0.05, _gateways.GATEWAY_GRACE_S
    try:
        links.detach("g1", sent.append)  # a different bound object: not the writer
        links.detach("g1", links._writers["g1"])
        links.deliver("g2", SendPush("obj", ["x"], "never attached"))  # held, then expired
        await asyncio.sleep(0.2)
    finally:
        _gateways.GATEWAY_GRACE_S = grace
    assert lost == [("obj", "s2")]  # only the socket still open when g1 was lost
    assert links._undelivered == {}
