"""``raydo dev DIR`` and ``raydo serve DIR`` with only a wrangler.jsonc, run as processes:
the keys raydo does not use are listed once at start, and the app is served."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cluster import RAYDO, RayCluster, Server, free_port, quiet_env, serve
from tests.wrangler.test_wrangler_app import make_worker

IGNORED = "raydo: wrangler.jsonc: ignored (raydo does not use them): observability"


def with_unused_keys(folder: Path) -> Path:
    config = folder / "wrangler.jsonc"
    config.write_text(config.read_text().replace('"name"', '"observability": {},\n  "name"', 1))
    return folder


def test_dev_lists_ignored_keys_once_and_serves(tmp_path: Path) -> None:
    app = with_unused_keys(make_worker(tmp_path / "w"))
    port = free_port()
    server = Server(
        [RAYDO, "dev", str(app), "--port", str(port), "--in-process"], port, tmp_path / "dev.log"
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/c/a").json() == {"value": 1}
            assert client.get("/seen").json()["token"] == "dev-token"
    finally:
        server.stop()
    assert server.output().count(IGNORED) == 1


def test_a_bad_wrangler_file_fails_dev_naming_file_line_and_key(tmp_path: Path) -> None:
    app = make_worker(tmp_path / "w")
    (app / "wrangler.jsonc").write_text('{\n  "name": "w",\n  "main": "src/entry.js"\n}\n')
    result = subprocess.run(
        [RAYDO, "dev", str(app)], capture_output=True, text=True, timeout=60, env=quiet_env()
    )
    assert result.returncode == 2
    assert f"{app.resolve() / 'wrangler.jsonc'}:3: main: expected the path of a Python file" in (
        result.stderr
    )


@pytest.mark.ray
def test_serve_loads_wrangler_jsonc_without_dev_vars(
    tmp_path: Path, ray_cluster: RayCluster, kill_hosts_after: Callable[[Path], Path]
) -> None:
    app = kill_hosts_after(with_unused_keys(make_worker(tmp_path / "w")))
    server = serve(app, ray_cluster, tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/c/a").json() == {"value": 1}
            assert client.get("/seen").status_code == 500  # no API_TOKEN: .dev.vars is dev's
    finally:
        server.stop()
    assert server.output().count(IGNORED) == 1
