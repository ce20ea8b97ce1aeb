"""The cluster watch (issue 13, item 4) without Ray: probes that fail, a lost part reported
once, callers refused with the reason while it is down, and recovery."""

from __future__ import annotations

import asyncio
import socket

import pytest

from raydo.actors import HostUnavailable
from raydo.actors._cluster_watch import (
    ClusterState,
    ClusterWatch,
    Probe,
    process_probe,
    tcp_probe,
)


def state(watch: ClusterWatch) -> ClusterState:
    """The watch's state now (a call, so each check reads it anew)."""
    return watch.state


class Part:
    """A part of a pretend cluster that is up or down as the test says."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.up = True

    def probe(self) -> Probe:
        async def check() -> str | None:
            return None if self.up else f"{self.what} does not answer"

        return Probe(self.what, check)


async def test_a_part_down_for_several_probes_is_reported_once_and_refuses_callers() -> None:
    gcs = Part("the GCS")
    downs: list[str] = []
    watch = ClusterWatch([gcs.probe()], on_down=downs.append, failures=2)
    await watch.probe_once()
    watch.check()  # up: nothing raised
    gcs.up = False
    await watch.probe_once()
    assert state(watch) is ClusterState.UP  # one failed probe is not enough
    await watch.probe_once()
    await watch.probe_once()
    assert state(watch) is ClusterState.DOWN and downs == ["the GCS does not answer"]
    with pytest.raises(HostUnavailable) as refused:
        watch.check()
    assert refused.value.retryable
    assert "the GCS does not answer" in str(refused.value)
    assert "raydo keeps retrying" in str(refused.value)
    gcs.up = True
    await watch.probe_once()
    assert state(watch) is ClusterState.UP and watch.reason is None
    watch.check()


async def test_recovery_waits_for_the_recover_step() -> None:
    gcs = Part("the GCS")
    answers = [False, True]
    asked: list[bool] = []

    async def recover() -> bool:
        asked.append(answers[len(asked)])
        return asked[-1]

    watch = ClusterWatch([gcs.probe()], on_down=lambda _: None, recover=recover, failures=1)
    gcs.up = False
    await watch.probe_once()
    assert state(watch) is ClusterState.DOWN
    await watch.probe_once()  # still down, and recover says not yet
    assert state(watch) is ClusterState.DOWN
    gcs.up = True
    await watch.probe_once()
    assert state(watch) is ClusterState.UP and asked == [False, True]


async def test_a_dead_process_is_down_at_once_and_for_good() -> None:
    exit_code: int | None = None
    probe = process_probe("Ray's raylet (pid 7)", lambda: exit_code, "/tmp/logs/raylet.out")
    downs: list[str] = []
    watch = ClusterWatch([probe], on_down=downs.append, failures=3)
    await watch.probe_once()
    assert state(watch) is ClusterState.UP
    exit_code = -9
    await watch.probe_once()
    assert downs == ["Ray's raylet (pid 7) was killed by signal 9; its log: /tmp/logs/raylet.out"]
    await watch.probe_once()
    assert state(watch) is ClusterState.DOWN and len(downs) == 1


async def test_a_tcp_probe_sees_a_listening_port_and_a_closed_one() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await tcp_probe("the GCS", "127.0.0.1", port).check() is None
    finally:
        server.close()
        await server.wait_closed()
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]
        reason = await tcp_probe("the GCS", "127.0.0.1", closed, timeout=2).check()
    assert reason is not None and reason.startswith(f"the GCS at 127.0.0.1:{closed} does not")


async def test_close_ends_the_probing_task() -> None:
    gcs = Part("the GCS")
    watch = ClusterWatch([gcs.probe()], on_down=lambda _: None, interval=0.01)
    watch.start()
    await asyncio.sleep(0)
    await watch.close()
    assert state(watch) is ClusterState.CLOSED
    with pytest.raises(RuntimeError, match="cannot go from closed to down"):
        watch._move(ClusterState.DOWN)
