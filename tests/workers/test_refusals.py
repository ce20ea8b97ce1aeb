"""What raydo's Python Workers SDK does not offer fails at once, naming what to use instead:
the platform's names raydo has no use for, Pyodide's ``js`` and ``pyodide``, and a Worker
that cannot serve."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

import js
import workers
from raydo.gateway.runtime import AppLoadError
from raydo.gateway.testing import start_app


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("WorkflowEntrypoint", "Workflows are not supported; a Durable Object with an alarm"),
        ("import_from_javascript", "there is no JavaScript runtime"),
        ("patch_env", "raydo.gateway.testing.start_app"),
        ("NoSuchThing", "see the README's 'Coming from Cloudflare Workers'"),
    ],
)
def test_a_name_the_sdk_lacks_says_what_to_use(name: str, advice: str) -> None:
    with pytest.raises(
        ImportError, match=re.escape(f"workers.{name} is not supported by raydo: ")
    ) as info:
        exec(f"from workers import {name}", {})
    assert advice in str(info.value)
    with pytest.raises(ImportError, match=re.escape(advice)):
        getattr(workers, name)


def test_private_names_stay_plain_attribute_errors() -> None:
    assert not hasattr(workers, "__wrapped__")
    assert not hasattr(js, "_private")


def test_js_offers_the_websocket_pair_and_response_only() -> None:
    from js import Response, WebSocketPair

    assert Response.new("hi", {"status": 201}).status == 201
    assert WebSocketPair is workers.WebSocketPair
    with pytest.raises(
        ImportError, match=re.escape("js.console is not supported by raydo: use logging")
    ):
        exec("from js import console", {})
    with pytest.raises(ImportError, match="without Pyodide: of the js module only WebSocketPair"):
        exec("from js import URL", {})


def test_pyodide_is_not_there_and_says_so() -> None:
    sys.modules.pop("pyodide", None)
    with pytest.raises(ImportError, match="raydo runs Python Workers on CPython"):
        importlib.import_module("pyodide.ffi")


async def test_a_worker_without_fetch_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "worker.py").write_text(
        "from workers import WorkerEntrypoint\n\nclass Default(WorkerEntrypoint):\n    pass\n"
    )
    (tmp_path / "raydo.toml").write_text('name = "no-fetch"\nmain = "worker:Default"\n')
    with pytest.raises(AppLoadError, match="main 'worker:Default': Default has no fetch"):
        async with start_app(tmp_path):
            pass


async def test_a_wrangler_main_without_default_or_app_says_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "worker.py").write_text("x = 1\n")
    (tmp_path / "wrangler.jsonc").write_text('{"name": "no-default", "main": "src/worker.py"}\n')
    with pytest.raises(AppLoadError) as info:
        async with start_app(tmp_path):
            pass
    assert "main (a Worker class, Default, or an ASGI app) 'worker:app'" in str(info.value)
    assert "module 'worker' has no 'app'" in str(info.value)
