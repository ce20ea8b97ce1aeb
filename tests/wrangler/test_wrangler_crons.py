"""wrangler's ``triggers.crons``: mapped onto ``[triggers] crons``, refused with the file,
line and key when malformed, and run over real HTTP by wrangler's test route."""

from __future__ import annotations

from pathlib import Path

import pytest

from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import start_app

ENTRY = """\
from starlette.applications import Starlette

from raydo import DurableObject


class Log(DurableObject):
    async def record(self, cron: str) -> None:
        self.ctx.storage.put("runs", [*self.ctx.storage.get("runs", []), cron])

    async def runs(self) -> list:
        return self.ctx.storage.get("runs", [])


async def scheduled(controller, env):
    await env.LOG.get_by_name("log").record(controller.cron)


app = Starlette()
"""

CONFIG = """\
{
  "name": "%s",
  "main": "src/entry.py",
  "durable_objects": { "bindings": [{ "name": "LOG", "class_name": "Log" }] },
  "triggers": {
    "crons": [%s],
  },
}
"""


def worker(folder: Path, crons: str) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "entry.py").write_text(ENTRY)
    (folder / "wrangler.jsonc").write_text(CONFIG % (f"crons-{folder.name}", crons))
    return folder


def test_triggers_crons_map_onto_the_config(tmp_path: Path) -> None:
    config = load_config(worker(tmp_path / "w", '"0 * * * *", "15 3 * * mon"'))
    assert config.crons == ("0 * * * *", "15 3 * * mon")
    assert config.ignored == ()


def test_a_bad_cron_names_the_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(worker(tmp_path / "w", '\n      "0 * * * *",\n      "every minute"'))
    e = info.value
    assert e.key == "triggers.crons"
    assert e.line == 6
    assert str(e).startswith(f"{(tmp_path / 'w' / 'wrangler.jsonc').resolve()}:6: triggers.crons")


async def test_the_scheduled_route_runs_a_wranglers_cron(tmp_path: Path) -> None:
    async with start_app(worker(tmp_path / "w", '"*/5 * * * *"')) as app:
        answer = await app.http.get("/__scheduled", params={"cron": "*/5 * * * *"})
        assert (answer.status_code, answer.text) == (200, "Ran scheduled event")
        assert await app.env.LOG.get_by_name("log").runs() == ["*/5 * * * *"]
