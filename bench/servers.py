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

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DevServer:
    """``raydo dev`` on a copy of an app folder, on a free port of 127.0.0.1."""

    def __init__(self, app: Path, workdir: Path, *, in_process: bool = False) -> None:
        self.copy = workdir / f"{app.name}-{'local' if in_process else 'ray'}"
        shutil.rmtree(self.copy, ignore_errors=True)
        shutil.copytree(app, self.copy, ignore=shutil.ignore_patterns(".raydo", "__pycache__"))
        self.port = free_port()
        args = [str(BIN / "raydo"), "dev", str(self.copy), "--port", str(self.port)]
        if in_process:
            args.append("--in-process")
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, path: str = "/", timeout: float = 120) -> DevServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}")
            try:
                httpx.get(self.url + path, timeout=5)
                return self
            except httpx.HTTPError:
                time.sleep(0.3)
        raise SystemExit(f"server at {self.url} not ready in {timeout} s")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
