"""Teardown: when ``Host.close()`` returns, nothing of the host runs and every event has its
answer; a turn running at that moment unwinds with its storage still open."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from raydo.actors import BindingSpec, HostUnavailable
from raydo.actors.types import Event, EventKind
from raydo.storage import codec
from tests.actors.face_objects import Lingerer

from ._support import make_spec, placed, run

LINGER = BindingSpec("LINGER", "tests.actors.face_objects:Lingerer")


def _rpc(object_hex: str, method: str, seq: int) -> Event:
    payload = [method, codec.encode(([], {}))]
    event = Event("LINGER", object_hex, None, f"chain-{seq}", EventKind.RPC, payload)
    event.caller, event.seq = "teardown-test", seq
    return event


def test_close_answers_every_event_and_unwinds_the_running_turn(tmp_path: Path) -> None:
    async def main() -> None:
        Lingerer.started = asyncio.Event()
        async with placed(make_spec(tmp_path, LINGER)) as placement:
            object_id = placement.env.LINGER.id_from_name("l")
            host = placement.host(placement.spec.host_for(LINGER, object_id.hex))
            running = host.deliver(_rpc(object_id.hex, "linger", 0))
            await asyncio.wait_for(Lingerer.started.wait(), 5)
            queued = [host.deliver(_rpc(object_id.hex, "quick", n)) for n in range(1, 4)]
            held = host.deliver(_rpc(object_id.hex, "quick", 9))  # early: held at intake
            answered_after: list[Any] = []
            for future in (running, *queued, held):
                future.add_done_callback(answered_after.append)

            await host.close()
            closed_with = len(answered_after)

            assert all(f.done() for f in (running, *queued, held))
            assert closed_with == 0 or closed_with == len(answered_after)
            errors = [f.exception() for f in (running, *queued, held)]
            assert all(isinstance(e, HostUnavailable) for e in errors), errors
            assert [e.retryable for e in errors] == [False, True, True, True, False]  # type: ignore[union-attr]
            assert Lingerer.unwound == [True]  # the turn read its own write while unwinding
            assert not host._tasks  # white-box: every task the host started has ended
            late = host.deliver(_rpc(object_id.hex, "quick", 4))
            assert isinstance(late.exception(), HostUnavailable)

    run(main)
