"""A raydo-style app whose only config is wrangler.jsonc, served over real HTTP: its Durable
Object binding, its vars and dev secrets on env (in the app and in objects), and class
migrations (a rename keeps the data, a delete removes it, each once)."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from raydo.gateway.class_migrations import RECORD_NAME, MigrationRefused
from raydo.gateway.testing import start_app
from tests.placements import Placement

ENTRY = """\
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from raydo import DurableObject
from helpers import shout  # a module beside the entry file, as in a Python Worker's src/


class {cls}(DurableObject):
    async def increment(self) -> int:
        n = self.ctx.storage.get("n", 0) + 1
        self.ctx.storage.put("n", n)
        return n

    async def seen(self) -> dict:
        return {{"host": self.env.API_HOST, "token": self.env.API_TOKEN}}


async def increment(request):
    stub = request.state.env.COUNTER.get_by_name(request.path_params["name"])
    return JSONResponse({{"value": await stub.increment()}})


async def seen(request):
    env = request.state.env
    inside = await env.COUNTER.get_by_name("x").seen()
    return JSONResponse(
        {{"host": shout(env.API_HOST), "limits": env.LIMITS, "token": env.API_TOKEN,
          "inside": inside}}
    )


app = Starlette(routes=[Route("/c/{{name}}", increment, methods=["POST"]), Route("/seen", seen)])
"""

CONFIG = """\
{
  // The Worker, as wrangler describes it.
  "name": "%s",
  "main": "src/entry.py",
  "compatibility_date": "2025-01-01",
  "vars": { "API_HOST": "example.com", "LIMITS": { "per_minute": 60 } },
  "durable_objects": { "bindings": [{ "name": "COUNTER", "class_name": "%s" }] },
  "migrations": [%s],
}
"""


def config_text(folder: Path, cls: str, migrations: str) -> str:
    """The config, named once per folder (so its Ray hosts are its own)."""
    marker = folder / ".name"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"wrangled-{uuid.uuid4().hex[:8]}")
    return CONFIG % (marker.read_text(), cls, migrations)


def make_worker(folder: Path, cls: str = "Counter", migrations: str = "") -> Path:
    """The Worker's files; a new version of them is imported afresh by the next start (as
    by a restarted process)."""
    for name in ("entry", "helpers"):
        sys.modules.pop(name, None)
    importlib.invalidate_caches()
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "entry.py").write_text(ENTRY.format(cls=cls))
    (folder / "src" / "helpers.py").write_text("def shout(s: str) -> str:\n    return s.upper()\n")
    (folder / "wrangler.jsonc").write_text(config_text(folder, cls, migrations))
    (folder / ".dev.vars").write_text("API_TOKEN=dev-token\n")
    return folder


async def test_a_wrangler_app_serves_its_bindings_vars_and_secrets(
    tmp_path: Path, placement: Placement, kill_hosts_after: Callable[[Path], Path]
) -> None:
    folder = make_worker(tmp_path / "w")
    if placement:
        kill_hosts_after(folder)
    async with start_app(folder, **placement) as app:
        assert (await app.http.post("/c/a")).json() == {"value": 1}
        assert (await app.http.post("/c/a")).json() == {"value": 2}
        seen = (await app.http.get("/seen")).json()
    assert seen == {
        "host": "EXAMPLE.COM",
        "limits": {"per_minute": 60},
        "token": "dev-token",
        "inside": {"host": "example.com", "token": "dev-token"},
    }


V1 = '{ "tag": "v1", "new_sqlite_classes": ["Counter"] }'
V2 = V1 + ', { "tag": "v2", "renamed_classes": [{ "from": "Counter", "to": "Tally" }] }'


async def test_a_renamed_class_keeps_its_objects_data(tmp_path: Path) -> None:
    folder = make_worker(tmp_path / "w", migrations=V1)
    storage = tmp_path / "storage"
    async with start_app(folder, storage=storage) as app:
        assert (await app.http.post("/c/a")).json() == {"value": 1}
    make_worker(folder, cls="Tally", migrations=V2)
    async with start_app(folder, storage=storage) as app:
        assert (await app.http.post("/c/a")).json() == {"value": 2}
    record = json.loads((storage / RECORD_NAME).read_text())
    assert record == {"applied": ["v1", "v2"], "classes": {"Tally": "COUNTER"}}
    async with start_app(folder, storage=storage) as app:  # applied once: nothing changes
        assert (await app.http.post("/c/a")).json() == {"value": 3}


async def test_a_deleted_class_loses_its_data_once(tmp_path: Path) -> None:
    folder = make_worker(tmp_path / "w", migrations=V1)
    storage = tmp_path / "storage"
    async with start_app(folder, storage=storage) as app:
        assert (await app.http.post("/c/a")).json() == {"value": 1}
    assert (storage / "COUNTER").is_dir()
    # The class goes; another takes a new binding.
    (folder / "wrangler.jsonc").write_text(
        config_text(
            folder,
            "Tally",
            V1
            + ', { "tag": "v2", "deleted_classes": ["Counter"], "new_sqlite_classes": ["Tally"] }',
        ).replace('"COUNTER"', '"TALLY"')
    )
    (folder / "src" / "entry.py").write_text(
        ENTRY.format(cls="Tally").replace("env.COUNTER", "env.TALLY")
    )
    sys.modules.pop("entry", None)
    async with start_app(folder, storage=storage) as app:
        assert (await app.http.post("/c/a")).json() == {"value": 1}
    assert not (storage / "COUNTER").exists()
    record = json.loads((storage / RECORD_NAME).read_text())
    assert record == {"applied": ["v1", "v2"], "classes": {"Tally": "TALLY"}}


async def test_a_rename_that_moves_the_binding_is_refused(tmp_path: Path) -> None:
    folder = make_worker(tmp_path / "w", migrations=V1)
    storage = tmp_path / "storage"
    async with start_app(folder, storage=storage) as app:
        assert (await app.http.post("/c/a")).json() == {"value": 1}
    make_worker(folder, cls="Tally", migrations=V2)
    text = (folder / "wrangler.jsonc").read_text().replace('"COUNTER"', '"TALLY"')
    (folder / "wrangler.jsonc").write_text(text)
    with pytest.raises(MigrationRefused, match="keep the binding COUNTER"):
        async with start_app(folder, storage=storage):
            pass
