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
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cluster import REPO, VENV_BIN, RayCluster, copy_app, free_port

pytestmark = pytest.mark.slow

HEAD_ATTEMPTS = 3
"""``ray start`` itself fails now and then on a loaded machine (its node does not register in
time; see ``RayCluster.start``): that is Ray's start, not the README's commands, so it is
tried again on a fresh port."""


def as_in_a_terminal(command: list[str]) -> list[str]:
    """``command`` run with SIGINT back at its default. A shell that runs a command in the
    background (``pytest ... &``, a CI step) starts it with SIGINT ignored, children inherit
    that, and Python then installs no KeyboardInterrupt handler: ``ray start --block`` slept
    through every Ctrl-C the test sent. In a user's terminal SIGINT is not ignored. A small
    launcher sets it and execs the command (same pid), rather than a ``preexec_fn`` in this
    threaded process."""
    launcher = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL);"
        " os.execv(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", launcher, *command]


def readme_cluster_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Running on a Ray cluster") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def as_here(command: list[str], port: int, app: Path) -> list[str]:
    """The command with this venv, the head's port and a copy of the app."""
    out = [str(VENV_BIN / Path(command[0]).name)]
    for arg in command[1:]:
        arg = arg.replace("6379", str(port))
        out.append(str(app) if arg == "examples/counter" else arg)
    return out


def start_head(
    ray_start: list[str], app: Path, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """``ray start --block`` as the README has it (a temp dir of its own, so Ray's default one
    and its ``session_latest`` stay the user's); once it blocks: the process, port and dir."""
    for attempt in range(1, HEAD_ATTEMPTS + 1):
        port = free_port()
        temp_dir = Path(f"/tmp/raydo-readme-{port}")
        head = subprocess.Popen(
            as_in_a_terminal(
                [
                    *as_here(ray_start, port, app),
                    f"--temp-dir={temp_dir}",
                    "--node-ip-address=127.0.0.1",
                ]
            ),
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while "--block" not in log.read_text() and head.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        if head.poll() is None:
            return head, port, temp_dir
        RayCluster(temp_dir).stop()
        said = log.read_text()
        if "timed out during startup" not in said or attempt == HEAD_ATTEMPTS:
            raise AssertionError(said)
    raise AssertionError("unreachable")


def test_the_cluster_commands_work_as_written(tmp_path: Path, ray_cluster: RayCluster) -> None:
    ray_start, serve = readme_cluster_commands()
    assert ray_start[:3] == [".venv/bin/ray", "start", "--head"] and "--block" in ray_start
    assert serve[:2] == [".venv/bin/raydo", "serve"]
    http_port = free_port()
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    # The token an earlier `raydo dev` (Ray's ray.init) left in ~/.ray: `ray start` then turns
    # token auth on, and a gateway that joins without it is refused.
    token = home / ".ray" / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # A home of its own, so the token is this test's; no auth variable set, as for a user
    # who followed the README.
    env |= {"HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "ray.log"
    head, port, temp_dir = start_head(ray_start, app, env, log)
    served = tmp_path / "serve.log"
    gateway: subprocess.Popen[bytes] | None = None
    try:
        assert "Token authentication is enabled" in log.read_text()
        gateway = subprocess.Popen(
            as_in_a_terminal([*as_here(serve, port, app), "--port", str(http_port)]),
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
