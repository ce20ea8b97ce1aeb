"""Start and stop the servers the benchmarks measure (``raydo dev``, fresh storage each time)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """A server started in its own session on a port of 127.0.0.1: wait for it, stop it."""

    label = "server"
    ready_timeout = 120.0  # seconds for wait() by default
    poll_s = 0.3
    proc: subprocess.Popen[bytes]
    url: str

    def _start(
        self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait(self, path: str = "/", timeout: float | None = None) -> Self:
        """Return once ``path`` answers (any status); SystemExit if the server exits first or
        never answers within ``timeout`` (``ready_timeout`` by default)."""
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.label} exited with {self.proc.returncode}")
            try:
                httpx.get(self.url + path, timeout=5)
                return self
            except httpx.HTTPError:
                time.sleep(self.poll_s)
        raise SystemExit(f"{self.label} at {self.url} not ready in {timeout} s")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class DevServer(ServerProcess):
    """``raydo dev`` on a copy of an app folder, on a free port of 127.0.0.1."""

    def __init__(self, app: Path, workdir: Path, *, in_process: bool = False) -> None:
        self.copy = workdir / f"{app.name}-{'local' if in_process else 'ray'}"
        shutil.rmtree(self.copy, ignore_errors=True)
        shutil.copytree(app, self.copy, ignore=shutil.ignore_patterns(".raydo", "__pycache__"))
        self.port = free_port()
        args = [str(BIN / "raydo"), "dev", str(self.copy), "--port", str(self.port)]
        if in_process:
            args.append("--in-process")
        self._start(args, dict(os.environ, RAY_USAGE_STATS_ENABLED="0"))
        self.url = f"http://127.0.0.1:{self.port}"
