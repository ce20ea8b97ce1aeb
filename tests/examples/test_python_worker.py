"""examples/python-worker: a Python Worker with only its wrangler.jsonc (a Durable Object, D1,
KV, static assets and a cron), served by raydo over real HTTP."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from raydo.gateway.testing import CONFIGURED_STORAGE, start_app
from tests.cluster import RAYDO

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python-worker"


def _migrated(tmp_path: Path) -> Path:
    folder = tmp_path / "python-worker"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".raydo", "__pycache__"))
    done = subprocess.run(
        [str(RAYDO), "db", "migrations", "apply", "DB", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "0001_create_entries.sql" in done.stdout + done.stderr
    return folder


async def test_the_python_worker_serves_its_bindings_assets_and_cron(tmp_path: Path) -> None:
    folder = _migrated(tmp_path)
    assert not (folder / "raydo.toml").exists()
    async with start_app(folder, storage=CONFIGURED_STORAGE) as app:
        hello = await app.http.get("/api/hello")
        assert hello.json() == {"message": "Hello from a Python Worker"}

        assert (await app.http.post("/api/counter/a")).json() == {"value": 1}
        assert (await app.http.post("/api/counter/a")).json() == {"value": 2}
        assert (await app.http.get("/api/counter/a")).json() == {"hits": 2}

        entry = {"name": "Ada", "message": "hi"}
        assert (await app.http.post("/api/guestbook", json=entry)).status_code == 201
        assert (await app.http.get("/api/guestbook")).json() == [entry]

        page = await app.http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "A Python Worker on raydo" in page.text
        assert (await app.http.get("/no-such-file.txt")).status_code == 404

        assert (await app.http.get("/api/last-cron")).json() == {"last": None}
        ran = await app.http.get("/__scheduled", params={"cron": "0 * * * *"})
        assert (ran.status_code, ran.text) == (200, "Ran scheduled event")
        assert (await app.http.get("/api/last-cron")).json() == {"last": {"cron": "0 * * * *"}}
