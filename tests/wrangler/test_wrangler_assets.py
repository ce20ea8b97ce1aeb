"""A Python Worker written as Cloudflare's docs write one (``Default(WorkerEntrypoint)``, a
Durable Object reached by ``idFromName``, ``env.ASSETS.fetch``), configured only by its
``wrangler.jsonc`` with ``assets``, served over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import start_app

ENTRY = """\
from workers import DurableObject, Response, WorkerEntrypoint


class Visits(DurableObject):
    async def visit(self) -> int:
        n = (await self.ctx.storage.get("n") or 0) + 1
        await self.ctx.storage.put("n", n)
        return n


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/api/visit"):
            stub = self.env.VISITS.get(self.env.VISITS.idFromName("home"))
            return Response.json({"visits": await stub.visit()})
        if "/raw/" in request.url:  # the Worker serves an asset itself
            return await self.env.ASSETS.fetch(request.url.replace("/raw/", "/", 1))
        return Response("from the worker", status=418)
"""

CONFIG = """\
{
  "name": "%s",
  "main": "src/entry.py",
  "compatibility_date": "2025-04-01",
  "compatibility_flags": ["python_workers"],
  "assets": {
    "directory": "./public",
    "binding": "ASSETS",
    "not_found_handling": "single-page-application",
    "html_handling": "auto-trailing-slash", // the default
    "experimental_serve_directly": true,
  },
  "durable_objects": { "bindings": [{ "name": "VISITS", "class_name": "Visits" }] },
  "migrations": [{ "tag": "v1", "new_sqlite_classes": ["Visits"] }],
}
"""


def worker(folder: Path, config: str = CONFIG) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "public").mkdir(exist_ok=True)
    (folder / "src" / "entry.py").write_text(ENTRY)
    (folder / "public" / "index.html").write_text("<h1>spa</h1>")
    (folder / "public" / "about.html").write_text("<h1>about</h1>")
    (folder / "wrangler.jsonc").write_text(config % f"assets-{folder.name}")
    return folder


def test_assets_map_onto_the_config(tmp_path: Path) -> None:
    config = load_config(worker(tmp_path / "w"))
    assert config.assets == {
        "directory": str((tmp_path / "w" / "public").resolve()),
        "binding": "ASSETS",
        "run_worker_first": False,
        "html_handling": "auto-trailing-slash",
        "not_found_handling": "single-page-application",
    }
    assert config.ignored == ("assets.experimental_serve_directly",)


def test_a_bad_assets_value_names_its_line(tmp_path: Path) -> None:
    bad = CONFIG.replace('"single-page-application"', '"spa"')
    with pytest.raises(ConfigError) as info:
        load_config(worker(tmp_path / "w", bad))
    assert (info.value.key, info.value.line) == ("assets.not_found_handling", 9)


async def test_a_worker_with_assets_and_a_durable_object(tmp_path: Path) -> None:
    async with start_app(worker(tmp_path / "w")) as app:
        page = await app.http.get("/about")
        assert (page.status_code, page.text) == (200, "<h1>about</h1>")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert (await app.http.get("/api/visit")).json() == {"visits": 1}
        assert (await app.http.get("/api/visit")).json() == {"visits": 2}
        # A browser navigating to a client-side route gets the single page.
        spa = await app.http.get("/settings/profile", headers={"sec-fetch-mode": "navigate"})
        assert (spa.status_code, spa.text) == (200, "<h1>spa</h1>")
        other = await app.http.get("/settings/profile")
        assert (other.status_code, other.text) == (418, "from the worker")
        raw = await app.http.get("/raw/about")
        assert (raw.status_code, raw.text) == (200, "<h1>about</h1>")
        assert raw.headers["etag"] == page.headers["etag"]
