"""Real processes for integration tests: a Ray cluster, and raydo gateways served from it."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
RAY = str(VENV_BIN / "ray")
RAYDO = str(VENV_BIN / "raydo")


def free_port_run(count: int) -> int:
    """A port ``p`` with ``p`` .. ``p + count - 1`` all free, below the kernel's range for
    outgoing connections (32768 up), where one of them could be taken before it is bound,
    and below Ray's worker ports (10002 up)."""
    for _ in range(1000):
        port = secrets.randbelow(6000) + 3000
        if all(port_is_free(p) for p in range(port, port + count)):
            return port
    raise RuntimeError(f"no {count} free ports in a row")


def port_is_free(port: int) -> bool:
    """Whether a socket can bind ``port`` on 127.0.0.1 now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def quiet_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class RayCluster:
    """A one-node Ray cluster on 127.0.0.1, started with ``ray start`` in a private temp dir."""

    temp_dir: Path
    port: int = field(default_factory=free_port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def token_path(self) -> Path:
        return self.temp_dir / "auth_token"

    def use_private_token(self) -> None:
        """Make this cluster's auth token and point this process (and its children) at it.

        Ray reads these variables when it is imported, so call this before ``import ray``.
        """
        self.token_path.write_text(secrets.token_hex(32))
        self.token_path.chmod(0o600)
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(self.token_path)

    def start(self, attempts: int = 3, *, same_port: bool = False) -> None:
        """Start the head with token auth.

        ``ray start`` fails now and then on a busy machine: a port it picked at random (the
        raylet's, the object manager's) was taken meanwhile by another cluster, or its GCS did
        not answer in time. Each failure kills what the attempt left and tries again on a fresh
        port (the same one with ``same_port``: a cluster started again where gateways expect
        it); the last one raises with Ray's own words.
        """
        for attempt in range(1, attempts + 1):
            run = subprocess.run(
                [
                    RAY,
                    "start",
                    "--head",
                    f"--port={self.port}",
                    "--node-ip-address=127.0.0.1",
                    "--num-cpus=2",
                    "--include-dashboard=false",
                    "--disable-usage-stats",
                    f"--temp-dir={self.temp_dir}",
                ],
                env=quiet_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=120,
            )
            if run.returncode == 0:
                return
            self.kill_processes()
            if attempt == attempts:
                said = run.stderr.decode(errors="replace")[-3000:]
                raise RuntimeError(f"ray start failed {attempts} times; the last said:\n{said}")
            if not same_port:
                self.port = free_port()

    def stop(self) -> None:
        """Kill this cluster's processes only (other Ray clusters on the machine are left alone)."""
        self.kill_processes()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def processes(self) -> set[psutil.Process]:
        """Every process started for this cluster's temp dir, and their children."""
        marker = str(self.temp_dir)
        roots = [
            p
            for p in psutil.process_iter(["cmdline"])
            if any(marker in arg for arg in (p.info["cmdline"] or []))
        ]
        found: set[psutil.Process] = set(roots)
        for proc in roots:
            with contextlib.suppress(psutil.NoSuchProcess):
                found.update(proc.children(recursive=True))
        return found

    def kill_processes(self) -> None:
        """Kill every process started for this cluster's temp dir, and their children."""
        doomed = self.processes()
        for proc in doomed:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(list(doomed), timeout=10)


def make_temp_dir(prefix: str) -> Path:
    # Ray puts unix sockets under its temp dir: keep the path short.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def copy_app(source: Path, into: Path, *, name: str | None = None) -> Path:
    """Copy an app folder and give it a unique name, so its hosts and files are its own."""
    target = into / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".raydo", "__pycache__"))
    unique = name or f"{source.name}-{uuid.uuid4().hex[:8]}"
    toml = target / "raydo.toml"
    if not toml.exists():  # a wrangler-configured Worker: its "name" key, written as JSON
        jsonc = target / "wrangler.jsonc"
        text = jsonc.read_text()
        renamed = re.sub(r'"name":\s*"[^"]*"', f'"name": "{unique}"', text, count=1)
        assert renamed != text, f"no name in {jsonc}"
        jsonc.write_text(renamed)
        return target
    text = toml.read_text()
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("name = "))
    lines[first] = f'name = "{unique}"'
    toml.write_text("\n".join(lines) + "\n")
    return target


@dataclass
class Server:
    """A ``raydo`` gateway process listening on 127.0.0.1."""

    args: Sequence[str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/__raydo_ready__", timeout: float = 90.0) -> Server:
        self.proc = subprocess.Popen(
            list(self.args),
            env=quiet_env(),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                httpx.get(self.url + ready_path, timeout=1.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def serve(
    app_dir: Path,
    cluster: RayCluster,
    log_dir: Path,
    *,
    workers: int = 1,
    args: Sequence[str] = (),
) -> Server:
    """``raydo serve`` on a free port, with ``args`` added to its command line."""
    port = free_port()
    command = [
        RAYDO,
        "serve",
        str(app_dir),
        "--address",
        cluster.address,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *args,
    ]
    return Server(command, port, log_dir / f"serve-{port}.log").start()


def dev(app_dir: Path, log_dir: Path, *, args: Sequence[str] = ()) -> Server:
    """``raydo dev`` (its own embedded Ray) on a free port, not started yet."""
    port = free_port()
    command = [RAYDO, "dev", str(app_dir), "--port", str(port), *args]
    return Server(command, port, log_dir / f"dev-{port}.log")


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and every process under it (a ``raydo dev`` and its embedded Ray)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def kill_all(processes: Sequence[psutil.Process], timeout: float = 30.0) -> None:
    """SIGKILL each process and wait until all are gone."""
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    _, alive = psutil.wait_procs(list(processes), timeout=timeout)
    assert not alive, f"still running after SIGKILL: {alive}"


def named(processes: Sequence[psutil.Process], name: str) -> list[psutil.Process]:
    """Those of ``processes`` whose executable is ``name`` (``gcs_server``, ``raylet``)."""
    found = []
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.name() == name:
                found.append(proc)
    return found


def host_processes(processes: Sequence[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` that are raydo hosts (Ray workers running a ``HostActor``)."""
    found = []
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if "HostActor" in " ".join(proc.cmdline()):
                found.append(proc)
    return found


def cluster_processes(cluster: RayCluster) -> list[psutil.Process]:
    """Every process of a :class:`RayCluster` (its GCS, raylet, workers and hosts)."""
    return list(cluster.processes())
