"""Internal bindings stay internal: the app's handlers, its objects and its queue consumers see
only the bindings the config names; the queue objects alone reach the broker (issue 12, item 6).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from raydo.actors import env_bindings, public_env
from raydo.bindings.queues import BROKER, OBJECTS
from raydo.gateway.testing import TestApp
from tests.bindings.test_queues import batches, until

CONFIGURED = ["BATCHED", "JOBS", "LOG", "PARKED"]


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("queues")


async def test_a_handler_an_object_and_a_consumer_see_only_configured_bindings(
    app: TestApp,
) -> None:
    seen = (await app.http.get("/env")).json()
    assert seen == {"dir": CONFIGURED, "internal": []}
    assert await app.env.LOG.get_by_name("log").env_seen() == [CONFIGURED, []]
    started = time.time()
    await app.env.JOBS.send({"do": "env"})

    async def recorded() -> bool:
        return bool(await batches(app, "env-seen"))

    await until(recorded, "the consumer ran")
    [(_, consumer_saw, at)] = await batches(app, "env-seen")
    assert consumer_saw == [CONFIGURED, []] and at >= started


async def test_platform_objects_get_the_internal_bindings_and_lead_back_to_the_apps_env(
    app: TestApp,
) -> None:
    placement: Any = app.gateway.placement
    platform = placement.platform_env
    assert set(env_bindings(platform)) == {*CONFIGURED, BROKER, OBJECTS}
    assert public_env(platform) is app.env and public_env(app.env) is app.env
    assert BROKER not in app.env and not hasattr(app.env, BROKER)
