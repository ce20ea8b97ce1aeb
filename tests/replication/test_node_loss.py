"""A node that dies, on a Ray cluster whose nodes each keep objects on their own storage root
(no shared disk), with every object's log in SeaweedFS: acknowledged writes survive it. A
node frozen with SIGSTOP (a zombie): the other node's objects keep answering, Ray restarts
the frozen node's hosts elsewhere and writes go there, and once the old node resumes its
stale hosts acknowledge nothing more and the store holds only the new owners' history
(in process, a stale owner is fenced in tests/replication/test_fencing.py)."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from raydo.storage.replication import EntryKind
from raydo.storage.replication.segments import Entry
from tests.cluster import RayCluster, Server, serve
from tests.hosts import actor_name
from tests.two_nodes import FAST_FAILURE_DETECTION, Node, host_nodes
from tests.two_nodes import two_nodes as start_two_nodes

from .stores import CREDENTIALS, StoreServer

pytestmark = pytest.mark.slow


@pytest.fixture
def two_nodes(store_credentials: None) -> Iterator[tuple[Node, Node]]:
    """A head and a worker on 127.0.0.1, each with its own storage root, fast to notice a
    lost node."""
    with start_two_nodes("rdr", {**FAST_FAILURE_DETECTION, **CREDENTIALS}) as nodes:
        yield nodes


@dataclass
class Writer:
    """Writes key after key to some objects over HTTP, remembering what was acknowledged."""

    url: str
    names: list[str]
    acknowledged: dict[str, set[str]] = field(default_factory=dict)
    failed: dict[str, set[str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                name = self.names[n % len(self.names)]
                key = f"w{n}"
                n += 1
                try:
                    ok = client.post(f"/notes/{name}/{key}", content=key).status_code == 200
                except httpx.HTTPError:
                    ok = False
                (self.acknowledged if ok else self.failed).setdefault(name, set()).add(key)
                if not ok:
                    time.sleep(0.05)


def _answer_again(client: httpx.Client, names: list[str], key: str, value: str) -> None:
    deadline = time.monotonic() + 120
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                reply = client.get(f"/notes/{name}/{key}", timeout=5)
            except httpx.TimeoutException:
                continue  # its host is frozen or restarting: ask again
            if reply.status_code == 200:
                assert reply.json()["value"] == value, (name, reply.json())
                pending.discard(name)
            else:
                assert reply.status_code == 503, reply.text
        time.sleep(0.2)
    assert not pending, f"objects that never answered again: {sorted(pending)}"


def _spread(head: RayCluster, hosts: list[str]) -> dict[str, str]:
    deadline = time.monotonic() + 30
    placed = host_nodes(head, hosts)
    while len(set(placed.values())) != 2 and time.monotonic() < deadline:
        time.sleep(1)
        placed = host_nodes(head, hosts)
    assert len(set(placed.values())) == 2, f"hosts did not spread: {placed}"
    return placed


def _check_every_write(client: httpx.Client, writer: Writer, names: list[str]) -> None:
    for name in names:
        for key in writer.acknowledged.get(name, set()):
            assert client.get(f"/notes/{name}/{key}").json()["value"] == key, (name, key)
        for key in writer.failed.get(name, set()):  # absent or whole, never anything else
            assert client.get(f"/notes/{name}/{key}").json()["value"] in (None, key)


def _integrity(storage: Path) -> None:
    files = list(storage.glob("NOTES/??/*.sqlite"))
    assert files
    for path in files:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], path
        finally:
            conn.close()


def _app(replicated_app: Callable[..., Path], server: StoreServer) -> tuple[Path, list[str]]:
    app_dir = replicated_app(server)
    toml = app_dir / "raydo.toml"
    toml.write_text(toml.read_text().replace("shards = 2", "shards = 4"))
    spec = runtime_spec(load_config(app_dir))
    hosts = sorted({actor_name(spec, key) for key in spec.standing_hosts()})
    return app_dir, hosts


def test_acknowledged_writes_survive_a_lost_node_without_a_shared_disk(
    two_nodes: tuple[Node, Node],
    seaweedfs_store: StoreServer,
    replicated_app: Callable[..., Path],
    tmp_path: Path,
) -> None:
    head, worker = two_nodes
    app_dir, hosts = _app(replicated_app, seaweedfs_store)
    server: Server = serve(app_dir, head.cluster, tmp_path)
    names = [f"n{i}" for i in range(24)]
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for name in names:
                for key in ("a", "b"):
                    assert client.post(f"/notes/{name}/{key}", content=key).status_code == 200
            _spread(head.cluster, hosts)
            assert list(worker.storage.glob("NOTES/??/*.sqlite")), "no object lived on the worker"
            writer = Writer(server.url, names[:8])
            writer.start()
            time.sleep(1)
            worker.cluster.stop()  # the whole worker node: its raylet and every host on it
            shutil.rmtree(worker.storage, ignore_errors=True)  # its disk went with it (stop()
            assert not worker.storage.exists()  # removes its folder): only the store has them
            _answer_again(client, names, "b", "b")
            time.sleep(1)
            writer.stop()
            assert sum(len(keys) for keys in writer.acknowledged.values()) > 0
            _check_every_write(client, writer, names[:8])
            for name in names:
                assert client.get(f"/notes/{name}/a").json()["value"] == "a"
        assert len(set(host_nodes(head.cluster, hosts).values())) == 1
    finally:
        server.stop()
    _integrity(head.storage)


def _post_until_ok(client: httpx.Client, names: list[str], key: str) -> None:
    """Write ``key`` to every object, asking again while its host is frozen or restarting."""
    deadline = time.monotonic() + 180
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                reply = client.post(f"/notes/{name}/{key}", content=key, timeout=30)
            except httpx.TimeoutException:
                continue
            if reply.status_code == 200:
                pending.discard(name)
            else:
                assert reply.status_code == 503, reply.text
        time.sleep(0.2)
    assert not pending, f"objects that never took {key!r}: {sorted(pending)}"


def _only_current_owners_wrote(server: StoreServer, prefix: str) -> int:
    """Every data entry of every object's log is by the owner of the epoch before it: no
    stale owner's write got in after a new owner's take-over. How many logs were checked."""
    client = server.client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=server.bucket, Prefix=f"{prefix}/NOTES/"
    ):
        keys += [item["Key"] for item in page.get("Contents") or [] if "/log/" in item["Key"]]
    logs: dict[str, list[str]] = {}
    for key in sorted(keys):
        logs.setdefault(key.split("/log/")[0], []).append(key)
    for entries in logs.values():
        owner = None
        for key in entries:
            body = client.get_object(Bucket=server.bucket, Key=key)["Body"].read()
            entry = Entry.unseal(body, key)
            if entry.kind is EntryKind.EPOCH:
                owner = entry.owner
            else:
                assert entry.owner == owner, f"{key}: written by a stale owner"
    return len(logs)


def test_a_frozen_node_is_fenced_and_its_objects_answer_from_elsewhere(
    two_nodes: tuple[Node, Node],
    seaweedfs_store: StoreServer,
    replicated_app: Callable[..., Path],
    prefix: str,
    tmp_path: Path,
) -> None:
    head, worker = two_nodes
    app_dir, hosts = _app(replicated_app, seaweedfs_store)
    server: Server = serve(app_dir, head.cluster, tmp_path)
    names = [f"z{i}" for i in range(16)]
    frozen = []
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for name in names:
                assert client.post(f"/notes/{name}/a", content="a").status_code == 200
            placed = _spread(head.cluster, hosts)
            scheme = runtime_spec(load_config(app_dir)).id_scheme
            spec = runtime_spec(load_config(app_dir))
            on_worker = {
                name
                for name in names
                if list(
                    worker.storage.glob(
                        f"NOTES/??/{scheme(spec.binding('NOTES')).from_name(name).hex}.sqlite"
                    )
                )
            }
            assert on_worker and on_worker != set(names), on_worker
            frozen = sorted(worker.cluster.processes(), key=lambda p: p.pid)
            for proc in frozen:  # the whole worker node, raylet and hosts, stops answering
                proc.suspend()
            # The head's objects are not held up by the frozen node's hosts (the first try
            # of each is answered), and the frozen node's answer once Ray restarted their
            # hosts on the head, their earlier writes with them (from the store).
            for name in sorted(set(names) - on_worker):
                assert client.post(f"/notes/{name}/b", content="b", timeout=20).status_code == 200
            _post_until_ok(client, sorted(on_worker), "b")
            _answer_again(client, names, "a", "a")
            moved = host_nodes(head.cluster, hosts)
            assert len(set(moved.values())) == 1 and set(placed.values()) > set(moved.values())
            for proc in frozen:  # the zombie wakes up: its hosts still think they own objects
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.resume()
            frozen = []
            _post_until_ok(client, names, "c")
            time.sleep(2)  # what the stale hosts had in flight reaches the store (or not)
            for name in names:
                for key in ("a", "b", "c"):
                    assert client.get(f"/notes/{name}/{key}").json()["value"] == key
        assert _only_current_owners_wrote(seaweedfs_store, prefix) == len(names)
    finally:
        for proc in frozen:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.resume()
        server.stop()
