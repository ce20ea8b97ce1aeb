"""A Worker's ``scheduled`` handler on a ``Default(WorkerEntrypoint)``, run by its cron
trigger (configured only by ``wrangler.jsonc``) through wrangler's test route."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raydo.bindings.cron import ScheduledController
from raydo.gateway.testing import start_app
from workers import WorkerEntrypoint

APP = Path(__file__).parent / "apps" / "cron_worker"


async def test_the_cron_runs_the_workers_scheduled_handler_with_env_and_ctx() -> None:
    async with start_app(APP) as app:
        answer = await app.http.get("/__scheduled", params={"cron": "*/5 * * * *"})
        assert (answer.status_code, answer.text) == (200, "Ran scheduled event")
        (what, at), (waited, same) = (await app.http.get("/")).json()
        assert (what, waited) == ("scheduled */5 * * * *", "waited")
        assert isinstance(at, int) and at == same > 0


@pytest.fixture
def worker_module() -> Iterator[types.ModuleType]:
    """A fresh module for a Worker class made in a test (its ``scheduled`` lands there)."""
    module = types.ModuleType("tests.workers.made_up_cron_worker")
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


async def test_scheduled_may_take_the_controller_alone(worker_module: types.ModuleType) -> None:
    seen: list[Any] = []

    async def scheduled(self: WorkerEntrypoint, controller: Any) -> None:
        seen.append((controller.cron, controller.scheduled_time, controller.scheduledTime))
        controller.noRetry()

    type(
        "Default",
        (WorkerEntrypoint,),
        {"__module__": worker_module.__name__, "scheduled": scheduled},
    )
    await worker_module.scheduled(ScheduledController("0 * * * *", 1_700_000_000_000), {})
    assert seen == [("0 * * * *", 1_700_000_000_000, 1_700_000_000_000)]
