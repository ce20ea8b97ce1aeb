"""Gates mode, Cloudflare's reference scenarios 14, 16 and 17 (``durable-objects.md`` §3), in
process and on Ray: a reply leaves only once the writes before it are committed (durable
under ``durability = "full"``), a commit that fails resets the object, and writes that fail
or are aborted leave nothing behind."""

from __future__ import annotations

import pytest

from raydo.actors import ObjectReset, RaydoError
from raydo.gateway.testing import TestApp, start_app
from raydo.storage import layout
from tests.gates.conftest import MakeApp
from tests.placements import Placement


@pytest.mark.parametrize("durability", ["normal", "full"])
async def test_scenario_14_a_reply_leaves_once_the_writes_before_it_are_committed(
    gates_dir: MakeApp, placement: Placement, name: str, durability: str
) -> None:
    folder = gates_dir(f'durability = "{durability}"')
    async with start_app(folder, **placement) as app:
        room = app.env.GATED.get_by_name(name)
        assert await room.write_and_return("unawaited") == "returned"
        assert await room.write_await_return("between") == "returned"
        assert await app.evict("GATED", name)  # the instance and its open transaction go
        assert await room.get("unawaited") == "unawaited"  # both were committed
        assert await room.get("between") == "between"


async def test_scenario_14_a_commit_that_fails_resets_the_object(app: TestApp, name: str) -> None:
    room = app.env.GATED.get_by_name(name)
    assert await room.increment() == 0
    with pytest.raises(RaydoError, match="FOREIGN KEY"):
        await room.fail_at_commit()  # its reply never says it succeeded
    again = app.env.GATED.get_by_name(name)
    assert await again.constructions() == 2  # reset: the next event built it anew
    assert await again.increment() == 1  # what was committed before stays


async def test_scenario_16_aborted_or_failing_writes_leave_nothing(app: TestApp, name: str) -> None:
    room = app.env.GATED.get_by_name(name)
    with pytest.raises(ObjectReset, match="on purpose"):
        await room.writes_then_abort()
    room = app.env.GATED.get_by_name(name)
    with pytest.raises(RaydoError):
        await room.put_many_with_a_bad_value()
    room = app.env.GATED.get_by_name(name)
    assert [key for key in await room.keys() if key in "abcxyz"] == []


async def test_scenario_17_a_get_after_a_put_sees_it(app: TestApp, name: str) -> None:
    room = app.env.GATED.get_by_name(name)
    assert await room.put_then_get({"fresh": [1, 2]}) == {"fresh": [1, 2]}


@pytest.mark.parametrize("binding", ["GATED", "STRICT"])
async def test_a_call_out_leaves_once_the_writes_before_it_are_committed(
    app: TestApp, name: str, binding: str
) -> None:
    room = getattr(app.env, binding).get_by_name(name)
    assert await room.put_confirmed("warm", 1) == "returned"  # the object's file exists
    path = layout.object_file(app.config.storage, binding, room.id.hex)
    # The called object reads the caller's file with a connection of its own: it sees the
    # write only if it was committed before the call left.
    assert await room.write_then_call(str(path), "committed") == "committed"
