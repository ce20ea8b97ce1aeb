"""The README's "Running on a Ray cluster" commands, run as written: a ``ray start --block``
cluster and ``raydo serve --workers 2`` joined to it with no auth variables set (the token in
``~/.ray`` turns the cluster's token auth on), an increment served, Ctrl-C on each stopping
it quietly, and the cluster's Ctrl-C stopping that cluster only."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cluster import REPO, VENV_BIN, RayCluster, copy_app, free_port

pytestmark = pytest.mark.slow


def readme_cluster_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Running on a Ray cluster") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def test_the_cluster_commands_work_as_written(tmp_path: Path, ray_cluster: RayCluster) -> None:
    ray_start, serve = readme_cluster_commands()
    assert ray_start[:3] == [".venv/bin/ray", "start", "--head"] and "--block" in ray_start
    assert serve[:2] == [".venv/bin/raydo", "serve"]
    port, http_port = str(free_port()), free_port()
    app = copy_app(REPO / "examples" / "counter", tmp_path)

    def as_here(command: list[str]) -> list[str]:
        """The command with this venv, a free port and a copy of the app."""
        out = [str(VENV_BIN / Path(command[0]).name)]
        for arg in command[1:]:
            arg = arg.replace("6379", port)
            out.append(str(app) if arg == "examples/counter" else arg)
        return out

    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    # The token an earlier `raydo dev` (Ray's ray.init) left in ~/.ray: `ray start` then turns
    # token auth on, and a gateway that joins without it is refused.
    token = home / ".ray" / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # A home of its own, so the token `ray start` makes is this test's; no auth variable set,
    # as for a user who followed the README. A temp dir of its own keeps Ray's default one
    # (and its `session_latest`) to the user's own clusters.
    env |= {"HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    temp_dir = Path(f"/tmp/raydo-readme-{port}")
    log = tmp_path / "ray.log"
    head = subprocess.Popen(
        [*as_here(ray_start), f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    served = tmp_path / "serve.log"
    gateway: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 120
        while "--block" not in log.read_text():
            assert head.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert "Token authentication is enabled" in log.read_text()
        gateway = subprocess.Popen(
            [*as_here(serve), "--port", str(http_port)],
            env=env,
            stdout=served.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{http_port}/counter/readme/increment"
        deadline = time.monotonic() + 120
        while True:
            assert gateway.poll() is None, served.read_text()
            assert time.monotonic() < deadline, served.read_text()
            try:
                reply = httpx.post(url, timeout=30)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert reply.status_code == 200, reply.text
        assert reply.json()["value"] == 1

        os.killpg(gateway.pid, signal.SIGINT)  # Ctrl-C in the serve terminal
        assert gateway.wait(60) == 0, served.read_text()
        output = served.read_text()
        assert "Traceback" not in output, output
        assert output.rstrip().endswith("raydo: stopped (SIGINT)"), output[-2000:]

        os.killpg(head.pid, signal.SIGINT)  # Ctrl-C in the cluster's terminal
        head.wait(60)
        survivors = RayCluster(temp_dir).processes()
        assert not survivors, [p.info for p in survivors]
        # The tests' own cluster, started beside it, still answers.
        socket.create_connection(("127.0.0.1", ray_cluster.port), timeout=5).close()
    finally:
        for proc in (gateway, head):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        RayCluster(temp_dir).stop()
