"""What the operator and the client see of a request: --access-log lines, binding errors as JSON."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from raydo.gateway.testing import start_app
from tests.cluster import RayCluster, serve

APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def ok(request):
    return JSONResponse({"ok": True})


async def missing_table(request):
    return JSONResponse(await request.state.env.DB.prepare("SELECT * FROM nowhere").all())


async def bad_key(request):
    await request.state.env.FILES.put("", b"x")


app = Starlette(routes=[
    Route("/ok", ok), Route("/missing-table", missing_table), Route("/bad-key", bad_key)
])
"""

CONFIG = """
name = "errors-{unique}"
main = "app:app"

[[d1_databases]]
binding = "DB"
database_name = "main"

[[r2_buckets]]
binding = "FILES"
bucket_name = "files"
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "errors"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    (folder / "raydo.toml").write_text(CONFIG.format(unique=tmp_path.name[-12:]))
    return folder


async def test_binding_errors_escaping_a_handler_are_the_documented_json(app_dir: Path) -> None:
    async with start_app(app_dir) as app:
        reply = await app.http.get("/missing-table")
        assert reply.status_code == 500
        assert reply.headers["content-type"] == "application/json"
        body = reply.json()
        assert body["error"] == "database_error"
        assert "no such table: nowhere" in body["message"]
        blob = await app.http.get("/bad-key")
        assert blob.status_code == 500
        assert blob.json()["error"] == "invalid_key"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dev_log(app_dir: Path, *options: str) -> list[str]:
    """Run ``raydo dev --in-process --access-log``, make two requests, stop it: its stderr."""
    port = _free_port()
    command = [sys.executable, "-m", "raydo.gateway.cli", "dev", str(app_dir), "--in-process"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--access-log", *options],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/ok").status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "raydo dev did not start"
                time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/missing-table").status_code == 500
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    return err.splitlines()


def test_the_access_log_has_method_path_status_and_duration_as_text(app_dir: Path) -> None:
    lines = [line for line in _dev_log(app_dir) if "raydo.access" in line]
    assert len(lines) == 2, lines
    assert " GET /ok 200 " in lines[0] and lines[0].endswith(" ms")
    assert " GET /missing-table 500 " in lines[1]


def test_the_access_log_as_json_lines(app_dir: Path) -> None:
    records = [json.loads(line) for line in _dev_log(app_dir, "--log-format", "json")]
    access = [r for r in records if r["logger"] == "raydo.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("GET", "/ok", 200),
        ("GET", "/missing-table", 500),
    ]
    assert all(isinstance(r["duration_ms"], float) and r["duration_ms"] >= 0 for r in access)


@pytest.mark.ray
def test_serve_with_two_workers_logs_each_request_once(
    app_dir: Path,
    ray_cluster: RayCluster,
    tmp_path: Path,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    server = serve(
        kill_hosts_after(app_dir), ray_cluster, tmp_path, workers=2, args=["--access-log"]
    )
    try:
        for _ in range(6):  # a new connection each: the kernel spreads them over the workers
            assert httpx.get(f"{server.url}/ok", timeout=30).status_code == 200
        assert httpx.get(f"{server.url}/missing-table", timeout=60).status_code == 500
    finally:
        server.stop()
    lines = [line for line in server.log.read_text().splitlines() if "raydo.access" in line]
    assert len([line for line in lines if " GET /ok 200 " in line]) == 6, lines
    assert len([line for line in lines if " GET /missing-table 500 " in line]) == 1, lines
