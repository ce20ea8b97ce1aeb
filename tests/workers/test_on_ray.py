"""The Worker of ``apps/hello`` with its objects on Ray hosts (other processes): the
platform's face travels with the class, so RPC, storage, SQL, alarms and hibernating
WebSockets work there as in process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from raydo.actors import CallRefused
from raydo.gateway.testing import start_app
from tests.cluster import RayCluster, copy_app

APP = Path(__file__).parent / "apps" / "hello"

pytestmark = pytest.mark.ray


async def test_a_worker_with_its_objects_on_ray_hosts(
    tmp_path: Path, ray_cluster: RayCluster, kill_hosts_after: Callable[[Path], Path]
) -> None:
    folder = kill_hosts_after(copy_app(APP, tmp_path))
    async with start_app(folder, ray=True) as app:
        assert (await app.http.get("/counter/a")).json() == {"value": 1}
        assert (await app.http.put("/counter/a/fetch")).json()["value"] == 2
        assert (await app.http.get("/hello/ray")).text == "Hello, ray!"

        stub = app.env.COUNTER.get_by_name("alarm")
        later = int(time.time() * 1000) + 3_600_000
        assert await stub.schedule(later) == later
        assert await app.run_alarm("COUNTER", "alarm")
        assert await stub.alarmed() == [1, None]

        async with app.websocket("/ws/lobby") as first, app.websocket("/ws/lobby") as second:
            await first.send("hi")
            assert {await first.recv(), await second.recv()} == {"1: hi"}
            await app.evict("ROOM", "lobby")
            await second.send("yo")
            assert {await first.recv(), await second.recv()} == {"2: yo"}
        with pytest.raises(CallRefused, match="webSocketMessage is reserved"):
            await app.env.ROOM.get_by_name("lobby").webSocketMessage(None, "x")
