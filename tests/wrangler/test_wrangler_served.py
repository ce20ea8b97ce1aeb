"""Real processes: cron triggers with two ``raydo serve`` gateways on one cluster (a missed
time runs once), and a Python Worker with assets and a cron served by ``raydo dev`` from its
``wrangler.jsonc`` alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.actors import Namespace
from raydo.bindings.cron import CRON_BINDING, CRON_OBJECT
from raydo.gateway.testing import CONFIGURED_STORAGE, start_app
from tests.cluster import Server, dev

HOURLY = "0 * * * *"


def until(check: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)
    return found


@pytest.mark.ray
async def test_two_gateways_run_a_missed_time_once(
    app_copy: Callable[[str], Path], gateway: Callable[..., Server]
) -> None:
    app_dir = app_copy("crons")
    three_hours_ago = int(time.time() * 1000) - 3 * 3600_000
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:  # as if down since
        assert app.gateway.placement is not None
        namespace = Namespace(app.gateway.spec.binding(CRON_BINDING), app.gateway.placement)
        await namespace.control(
            namespace.id_from_name(CRON_OBJECT),
            "sql",
            "UPDATE cron_next SET next_ms = ? WHERE cron = ?",
            [three_hours_ago, HOURLY],
        )
    started_ms = int(time.time() * 1000)
    first, second = gateway(app_dir), gateway(app_dir)  # both arm the one schedule
    runs = until(lambda: httpx.get(first.url + "/runs").json(), "the missed run")

    def missed(runs: list[list[Any]]) -> list[list[Any]]:
        # A test that spans the top of an hour also sees that hour's own run, rightly.
        return [run for run in runs if run[1] < started_ms]

    assert missed(runs) == [[HOURLY, three_hours_ago]]
    assert all(at % 3600_000 == 0 for _, at in runs[1:]), runs
    assert missed(httpx.get(second.url + "/runs").json()) == missed(runs)


WORKER = """\
from workers import DurableObject, Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response.json(await self.env.LOG.getByName("log").runs())

    async def scheduled(self, controller, env, ctx):
        await env.LOG.getByName("log").record(controller.cron)


class Log(DurableObject):
    async def record(self, cron):
        await self.ctx.storage.put("runs", [*(await self.ctx.storage.get("runs") or []), cron])

    async def runs(self):
        return await self.ctx.storage.get("runs") or []
"""

CONFIG = """\
{
  "name": "%s",
  "main": "src/worker.py",
  "compatibility_flags": ["python_workers"],
  "assets": { "directory": "./public", "not_found_handling": "404-page" },
  "triggers": { "crons": ["*/30 * * * *"] },
  "durable_objects": { "bindings": [{ "name": "LOG", "class_name": "Log" }] },
  "migrations": [{ "tag": "v1", "new_sqlite_classes": ["Log"] }],
}
"""


@pytest.mark.slow
def test_raydo_dev_serves_a_workers_assets_and_its_cron(tmp_path: Path) -> None:
    folder = tmp_path / "worker"
    (folder / "src").mkdir(parents=True)
    (folder / "public").mkdir()
    (folder / "src" / "worker.py").write_text(WORKER)
    (folder / "public" / "index.html").write_text("<h1>hello</h1>")
    (folder / "public" / "404.html").write_text("<h1>lost</h1>")
    (folder / "wrangler.jsonc").write_text(CONFIG % f"served-{tmp_path.name[-10:]}")
    server = dev(folder, tmp_path).start()
    try:
        page = httpx.get(server.url + "/")
        assert (page.status_code, page.text) == (200, "<h1>hello</h1>")
        lost = httpx.get(server.url + "/nothing", headers={"sec-fetch-mode": "navigate"})
        assert (lost.status_code, lost.text) == (404, "<h1>lost</h1>")
        assert httpx.get(server.url + "/api").json() == []  # the Worker
        ran = httpx.get(server.url + "/__scheduled", params={"cron": "*/30 * * * *"})
        assert (ran.status_code, ran.text) == (200, "Ran scheduled event")
        assert httpx.get(server.url + "/api").json() == ["*/30 * * * *"]
    finally:
        server.stop()
