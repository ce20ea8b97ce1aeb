"""Shipping and restore, in process: acknowledged writes outlive the local files, a restart on
the same files reads no snapshot, idle objects cost nothing, busy ones ship in groups, and a
damaged entry fails loudly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from raydo.actors import HostUnavailable
from raydo.gateway.testing import start_app

from .stores import StoreServer
from .support import stats, store_requests


async def test_acknowledged_writes_outlive_the_local_files(
    store_server: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    app_dir = replicated_app(store_server)
    names = [f"n{i}" for i in range(6)]
    async with start_app(app_dir) as app:  # a fresh storage folder, deleted after
        for name in names:
            stub = app.env.NOTES.get_by_name(name)
            for key in ("a", "b"):
                await stub.write(key, f"{name}-{key}")
        await app.env.DB.exec("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('kept')")
        digests = {name: await app.env.NOTES.get_by_name(name).digest() for name in names}
    async with start_app(app_dir) as app:  # another fresh folder: only the store has them
        for name in names:
            stub = app.env.NOTES.get_by_name(name)
            assert await stub.read("b") == f"{name}-b"
            assert await stub.digest() == digests[name]
        assert await app.env.DB.prepare("SELECT x FROM t").first("x") == "kept"
        assert stats(app).restores == len(names) + 1  # every object, and the database's


async def test_a_restart_on_the_same_files_reads_no_snapshot(
    moto_store: StoreServer, replicated_app: Callable[..., Path], tmp_path: Path
) -> None:
    app_dir = replicated_app(moto_store)
    async with start_app(app_dir, storage=tmp_path) as app:
        await app.env.NOTES.get_by_name("same").write("k", "v1")
    async with start_app(app_dir, storage=tmp_path) as app:
        stub = app.env.NOTES.get_by_name("same")
        assert await stub.read("k") == "v1"
        await stub.write("k", "v2")
        assert stats(app).restores == 0
        assert stats(app).take_overs == 1
    async with start_app(app_dir) as app:  # elsewhere: from the store, with the later write
        assert await app.env.NOTES.get_by_name("same").read("k") == "v2"


async def test_an_object_evicted_and_activated_again_makes_no_store_request(
    moto_store: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    async with start_app(replicated_app(moto_store)) as app:
        stub = app.env.NOTES.get_by_name("evicted")
        await stub.write("k", "v")
        assert await app.evict("NOTES", "evicted")
        before = store_requests(app)
        assert await stub.read("k") == "v"
        assert store_requests(app) == before


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_idle_objects_make_no_store_requests(
    store_server: StoreServer, replicated_app: Callable[..., Path], mode: str
) -> None:
    # async ships on a timer: an idle object must not keep one running (20 intervals here).
    async with start_app(replicated_app(store_server, mode=mode, async_interval_s=0.1)) as app:
        for i in range(5):
            await app.env.NOTES.get_by_name(f"idle-{i}").write("k", "v")
        deadline = time.monotonic() + 10
        while stats(app).segments + stats(app).snapshots < 5:  # async: until all shipped
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        before = store_requests(app)
        await asyncio.sleep(2)
        assert store_requests(app) == before


async def test_commits_in_flight_together_ship_as_one_entry(
    store_server: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    app_dir = replicated_app(store_server)
    async with start_app(app_dir) as app:
        stub = app.env.NOTES.get_by_name("busy")
        await stub.write("first", 0)
        shipped = stats(app)
        before = shipped.segments + shipped.snapshots + shipped.slots
        counts = await asyncio.gather(*(stub.write(f"k{i}", i) for i in range(200)))
        assert sorted(counts) == list(range(2, 202))
        shipped = stats(app)
        writes = shipped.segments + shipped.snapshots + shipped.slots - before
        assert 1 <= writes < 200, writes  # one store write per round, not per commit
    async with start_app(app_dir) as app:
        assert len(await app.env.NOTES.get_by_name("busy").everything()) == 202


async def test_a_big_object_restores_through_snapshots(
    moto_store: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    app_dir = replicated_app(moto_store)
    async with start_app(app_dir) as app:
        stub = app.env.NOTES.get_by_name("big")
        for tag in range(3):  # a 4.5 MB object written three times over: its log outgrows it
            for start in range(0, 300, 50):
                await stub.fill(50, 15_000, start, tag)
        digest = await stub.digest()
        assert stats(app).snapshots >= 2
    async with start_app(app_dir) as app:
        assert await app.env.NOTES.get_by_name("big").digest() == digest


async def test_a_corrupted_segment_is_detected_at_restore(
    store_server: StoreServer, replicated_app: Callable[..., Path], prefix: str
) -> None:
    app_dir = replicated_app(store_server)
    async with start_app(app_dir) as app:
        stub = app.env.NOTES.get_by_name("damaged")
        await stub.write("a", "1")
        await stub.write("b", "2")
        object_hex = app.env.NOTES.id_from_name("damaged").hex
    client = store_server.client()
    log_prefix = f"{prefix}/NOTES/{object_hex}/log/"
    keys = [
        o["Key"]
        for o in client.list_objects_v2(Bucket=store_server.bucket, Prefix=log_prefix)["Contents"]
    ]
    last = keys[-1]
    body = bytearray(client.get_object(Bucket=store_server.bucket, Key=last)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=store_server.bucket, Key=last, Body=bytes(body))
    async with start_app(app_dir) as app:
        with pytest.raises(HostUnavailable, match="corrupted"):
            await app.env.NOTES.get_by_name("damaged").read("a")
