"""Cron triggers (``[triggers] crons``): the expressions checked, the schedule kept by one
internal object (so every gateway arms the same one, a restart keeps it and a missed time
runs once), the dev route that runs the handler on demand, and the config's errors.

The test app (``tests/apps/crons``) is hourly and daily, so nothing fires on its own during a
test: a test moves a due time into the past and restarts the app, or asks ``/__scheduled``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from raydo.actors import Namespace
from raydo.bindings.cron import (
    CRON_BINDING,
    CRON_OBJECT,
    CronError,
    check_cron,
    next_after,
    start_schedule,
)
from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.runtime import AppLoadError
from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from raydo.storage import codec
from tests.placements import Placement

HOURLY, WEEKDAYS = "0 * * * *", "30 4 * * 1-5"


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


def schedule_object(app: TestApp) -> tuple[Namespace, Any]:
    gateway = app.gateway
    assert gateway.placement is not None
    namespace = Namespace(gateway.spec.binding(CRON_BINDING), gateway.placement)
    return namespace, namespace.id_from_name(CRON_OBJECT)


async def schedule_sql(app: TestApp, query: str, *params: Any) -> list[dict[str, Any]]:
    namespace, object_id = schedule_object(app)
    packed = await namespace.control(object_id, "sql", query, list(params))
    rows: list[dict[str, Any]] = codec.decode(packed)["rows"]
    return rows


async def next_times(app: TestApp) -> dict[str, int]:
    rows = await schedule_sql(app, "SELECT cron, next_ms FROM cron_next")
    return {str(r["cron"]): int(r["next_ms"]) for r in rows}


async def runs(app: TestApp) -> list[list[Any]]:
    found: list[list[Any]] = await app.env.LOG.get_by_name("log").runs()
    return found


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("crons")


# --- expressions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression", ["* * * * *", "*/15 9-17 * * 1-5", "0 0 1 1 *", "5,35 * * * sun", "0 12 * jan *"]
)
def test_standard_expressions_are_taken(expression: str) -> None:
    assert check_cron(expression) == expression


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("", "expected a cron expression"),
        (5, "expected a cron expression"),
        (None, "expected a cron expression"),
        ("* * * *", "expected 5 fields"),
        ("0 * * * * *", "expected 5 fields"),  # seconds are not standard cron
        ("61 * * * *", "not a valid cron expression"),
        ("* 24 * * *", "not a valid cron expression"),
        ("* * 0 * *", "not a valid cron expression"),
        ("* * * 13 *", "not a valid cron expression"),
        ("bogus * * * *", "not a valid cron expression"),
        ("0 0 31 2 *", "never fires"),  # February 31st
        ("*" + " *" * 200, "at most 256"),
        ("* * * * *\0", "no NUL"),
    ],
)
def test_malformed_expressions_say_why(expression: object, says: str) -> None:
    with pytest.raises(CronError, match=says):
        check_cron(expression)


def test_next_after_steps_in_utc_strictly_after() -> None:
    # 2026-12-04 17:00:00 UTC, exactly on an hourly time: the next is an hour later.
    on_the_hour = 1796403600000
    assert next_after(HOURLY, on_the_hour) == on_the_hour + 3600_000
    assert next_after(HOURLY, on_the_hour - 1) == on_the_hour
    # Friday 17:00 -> Monday 04:30 (weekdays only).
    assert next_after(WEEKDAYS, on_the_hour) == on_the_hour + (2 * 24 + 11) * 3600_000 + 1800_000


# --- config ------------------------------------------------------------------------------


def write_app(folder: Path, triggers: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text("app = None\n")
    (folder / "raydo.toml").write_text(f'name = "bad"\nmain = "app:app"\n{triggers}\n')
    return folder


@pytest.mark.parametrize(
    ("triggers", "says"),
    [
        ('[triggers]\ncrons = ["61 * * * *"]', "triggers.crons"),
        ('[triggers]\ncrons = "0 * * * *"', "triggers.crons"),
        ('[triggers]\ncrons = ["0 0 30 2 *"]', "triggers.crons"),
        ('[triggers]\ncrons = ["0 * * * *", "0 * * * *"]', "appears twice"),
        ('[triggers]\ncron = ["0 * * * *"]', "triggers.cron"),
        ("triggers = 3", "triggers"),
    ],
)
def test_bad_triggers_are_config_errors(tmp_path: Path, triggers: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace(".", r"\.")):
        load_config(write_app(tmp_path / "app", triggers))


def test_triggers_load_with_the_default_handler(app_dir: Path) -> None:
    config = load_config(app_dir)
    assert config.crons == (HOURLY, WEEKDAYS)
    assert config.cron_handler is None


async def test_a_missing_handler_fails_at_start(app_dir: Path) -> None:
    (app_dir / "app.py").write_text(
        (app_dir / "app.py").read_text().replace("async def scheduled", "async def later")
    )
    with pytest.raises(AppLoadError, match="triggers 'app:scheduled': module 'app' has no"):
        async with start_app(app_dir):
            pass


# --- the schedule --------------------------------------------------------------------------


async def test_start_arms_one_time_per_expression_and_another_gateway_changes_nothing(
    app: TestApp,
) -> None:
    before = int(time.time() * 1000)
    first = await next_times(app)
    assert sorted(first) == [HOURLY, WEEKDAYS]
    for cron, due in first.items():
        assert before < due <= next_after(cron, int(time.time() * 1000))
    # A second gateway process of the same app starts: the same object, the same schedule.
    assert app.gateway.placement is not None
    again = await start_schedule(app.gateway.placement, app.gateway.spec)
    assert again == first == await next_times(app)
    assert await runs(app) == []


async def test_a_missed_time_runs_once_after_a_restart_and_the_schedule_goes_on(
    app_dir: Path, placement: Placement
) -> None:
    three_hours_ago = int(time.time() * 1000) - 3 * 3600_000
    async with start_app(app_dir, storage=CONFIGURED_STORAGE, **placement) as app:
        # As if the app had been down since before three hourly times.
        await schedule_sql(
            app, "UPDATE cron_next SET next_ms = ? WHERE cron = ?", three_hours_ago, HOURLY
        )
        weekdays = (await next_times(app))[WEEKDAYS]
    async with start_app(app_dir, storage=CONFIGURED_STORAGE, **placement) as app:

        async def ran() -> bool:
            return len(await runs(app)) > 0

        await until(ran, "the missed hourly run")
        assert await runs(app) == [[HOURLY, three_hours_ago]]
        after = await next_times(app)
        assert after[HOURLY] > int(time.time() * 1000) - 1000
        assert after[WEEKDAYS] == weekdays  # kept across the restart
    async with start_app(app_dir, storage=CONFIGURED_STORAGE, **placement) as app:
        assert await runs(app) == [[HOURLY, three_hours_ago]]  # once, not once per start
        assert await next_times(app) == after


async def test_an_expression_gone_from_the_config_leaves_the_schedule(app_dir: Path) -> None:
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        assert sorted(await next_times(app)) == [HOURLY, WEEKDAYS]
    config = app_dir / "raydo.toml"
    config.write_text(config.read_text().replace(f', "{WEEKDAYS}"', ""))
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        assert sorted(await next_times(app)) == [HOURLY]


# --- /__scheduled ----------------------------------------------------------------------------


async def test_the_dev_route_runs_the_handler_now(app: TestApp) -> None:
    answer = await app.http.get("/__scheduled", params={"cron": WEEKDAYS})
    assert (answer.status_code, answer.text) == (200, "Ran scheduled event")
    answer = await app.http.get("/cdn-cgi/handler/scheduled")  # the first cron by default
    assert answer.status_code == 200
    found = await runs(app)
    assert [cron for cron, _ in found] == [WEEKDAYS, HOURLY]
    assert all(abs(when - time.time() * 1000) < 600_000 for _, when in found)
    assert (await app.http.get("/runs")).json() == found
    # Runs on demand leave the schedule alone.
    assert sorted(await next_times(app)) == [HOURLY, WEEKDAYS]


async def test_the_dev_route_refuses_a_bad_cron_and_reports_a_failing_handler(
    app: TestApp,
) -> None:
    answer = await app.http.get("/__scheduled", params={"cron": "99 * * * *"})
    assert answer.status_code == 400
    assert "not a valid cron expression" in answer.text
    await app.env.LOG.get_by_name("log").fail(True)
    answer = await app.http.get("/__scheduled", params={"cron": WEEKDAYS})
    assert answer.status_code == 500
    assert "raised" in answer.text
    namespace, object_id = schedule_object(app)
    counts = await namespace.get(object_id).runs()
    assert counts == {"runs": 0, "failures": 1}


async def test_an_app_without_crons_has_no_dev_route(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("queues")) as app:
        answer = await app.http.get("/__scheduled")
        assert (answer.status_code, answer.text) == (404, "this app has no cron triggers")


async def test_a_run_after_a_code_reload_takes_the_new_handler(app: TestApp, app_dir: Path) -> None:
    from raydo.actors import forget_app_modules

    assert (await app.http.get("/__scheduled", params={"cron": HOURLY})).status_code == 200
    source = app_dir / "app.py"
    source.write_text(
        source.read_text().replace(
            "record(controller.cron, controller.scheduled_time)", "record('edited', 0)"
        )
    )
    forget_app_modules(str(app_dir))  # what raydo dev's reload does in every host
    assert (await app.http.get("/__scheduled", params={"cron": HOURLY})).status_code == 200
    assert [cron for cron, _ in await runs(app)] == [HOURLY, "edited"]
