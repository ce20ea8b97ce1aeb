"""A runtime holds its storage folder: a second one refuses to start, naming the holder."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from raydo.gateway.testing import CONFIGURED_STORAGE, start_app
from raydo.storage.folder_lock import FolderInUse
from tests.cluster import REPO, RayCluster, copy_app, make_temp_dir, serve


async def test_raydo_dev_refuses_a_folder_another_runtime_serves(tmp_path: Path) -> None:
    app_dir = copy_app(REPO / "examples" / "counter", tmp_path)
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        assert (await app.http.post("/counter/a/increment")).status_code == 200
        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "raydo.gateway.cli", "dev", str(app_dir), "--in-process"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert second.returncode == 2
    assert "is in use by" in second.stderr
    assert str(app_dir / ".raydo") in second.stderr
    assert f"pid {os.getpid()}" in second.stderr


async def test_a_second_harness_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    app_dir = copy_app(REPO / "examples" / "counter", tmp_path)
    async with start_app(app_dir, storage=CONFIGURED_STORAGE):
        with pytest.raises(FolderInUse, match="is in use by"):
            async with start_app(app_dir, storage=CONFIGURED_STORAGE):
                pass
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as again:  # freed at exit
        assert (await again.http.post("/counter/a/increment")).status_code == 200


def test_the_readme_snippet_passes_twice_from_any_folder_and_leaves_the_example_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = REPO / "examples" / "counter"
    storage_before = sorted(p.name for p in (example / ".raydo").glob("**/*"))
    readme = (REPO / "README.md").read_text()
    snippet = readme.split("An example test (pytest, no plugins needed):", 1)[1]
    code = snippet.split("```python", 1)[1].split("```", 1)[0]
    code = code.replace('"examples/counter"', repr(str(example)))
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        namespace: dict[str, object] = {}
        exec(compile(code, "README example", "exec"), namespace)
        namespace["test_counter_counts"]()  # type: ignore[operator]
    assert sorted(p.name for p in (example / ".raydo").glob("**/*")) == storage_before


@pytest.mark.ray
def test_raydo_serve_of_a_second_cluster_is_refused_on_the_folder(
    tmp_path: Path, ray_cluster: RayCluster, kill_hosts_after: Callable[[Path], Path]
) -> None:
    # Two Ray clusters pointed at one app folder (a misconfiguration): the second refuses.
    app_dir = kill_hosts_after(copy_app(REPO / "examples" / "counter", tmp_path))
    first = serve(app_dir, ray_cluster, tmp_path)
    other = RayCluster(make_temp_dir("rdo-"))
    try:
        other.start()
        assert httpx.post(f"{first.url}/counter/a/increment", timeout=60).status_code == 200
        with pytest.raises(RuntimeError, match="is in use by") as refused:
            serve(app_dir, other, tmp_path).stop()
        assert str(app_dir / ".raydo") in str(refused.value)
        # The first cluster's runtime serves on, its count intact.
        reply = httpx.post(f"{first.url}/counter/a/increment", timeout=60)
        assert reply.json()["value"] == 2, reply.text
    finally:
        other.stop()
        first.stop()
