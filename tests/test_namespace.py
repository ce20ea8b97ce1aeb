"""raydo lives under one import name: an app may have modules called storage, gateway, actors
or bindings of its own, in-process and in Ray hosts alike."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import raydo
from raydo.gateway.testing import start_app
from tests.cluster import RayCluster

APP = {
    "raydo.toml": """
name = "own-modules"
main = "app:app"

[[durable_objects.bindings]]
name = "THING"
class_name = "objects:Thing"
shards = 1
""",
    # The app's own modules, named as raydo's packages were before the move.
    "storage.py": 'WHERE = "the app\'s storage module"\n',
    "gateway.py": 'GREETING = "the app\'s gateway module"\n',
    "actors.py": "def double(n: int) -> int:\n    return 2 * n\n",
    "bindings.py": "NAMES = ['THING']\n",
    "objects.py": """
import actors
import storage
from raydo import DurableObject


class Thing(DurableObject):
    async def where(self) -> list[object]:
        n = self.ctx.storage.get("n", 0) + 1
        self.ctx.storage.put("n", n)
        return [storage.WHERE, actors.double(n)]
""",
    "app.py": """
import bindings
import gateway
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def where(request):
    env = request.state.env
    answer = await env.THING.get_by_name(request.path_params["name"]).where()
    return JSONResponse([gateway.GREETING, bindings.NAMES, *answer])


app = Starlette(routes=[Route("/thing/{name}", where)])
""",
}


def write_app(folder: Path) -> Path:
    folder.mkdir()
    for name, text in APP.items():
        (folder / name).write_text(text.lstrip())
    return folder


def test_the_public_face_exports_what_users_construct() -> None:
    assert raydo.DurableObject is importlib.import_module("raydo.actors").DurableObject
    for name in ("ObjectError", "Overloaded", "ObjectReset", "HostUnavailable", "RaydoError"):
        assert getattr(raydo, name) is getattr(importlib.import_module("raydo.actors"), name)
    assert set(raydo.__all__) <= set(dir(raydo))


def test_raydo_installs_no_generic_top_level_names(tmp_path: Path) -> None:
    # Outside the checkout (whose folders pytest puts on the path), as an app's process sees it.
    probe = "import importlib.util as u, raydo.gateway.cli; print([u.find_spec(n) for n in %r])"
    names = ["actors", "bindings", "gateway", "storage"]
    out = subprocess.run(
        [sys.executable, "-c", probe % names],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == str([None] * len(names))


def _check(answer: list[object]) -> None:
    assert answer == [
        "the app's gateway module",
        ["THING"],
        "the app's storage module",
        2,
    ]


def test_an_app_with_its_own_storage_module_works_in_process(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path / "own-modules")

    async def main() -> None:
        async with start_app(app_dir) as app:
            response = await app.http.get("/thing/a")
            assert response.status_code == 200, response.text
            _check(response.json())

    asyncio.run(main())


@pytest.mark.ray
def test_an_app_with_its_own_storage_module_works_in_ray_hosts(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    app_dir = write_app(tmp_path / "own-modules-ray")

    async def main() -> None:
        async with start_app(app_dir, ray=True) as app:
            response = await app.http.get("/thing/b")
            assert response.status_code == 200, response.text
            _check(response.json())

    asyncio.run(main())
