"""One writer per object, guaranteed by the store; and what a store that goes away costs:
``sync`` writes fail saying so, nothing acknowledged is lost, a commit that never reached the
store is absent after recovery, and objects recover by themselves."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from raydo.actors import HostUnavailable
from raydo.gateway.testing import start_app
from raydo.storage.replication import (
    EntryKind,
    Fenced,
    ObjectLog,
    S3Store,
    StoreFailure,
)
from raydo.storage.replication.local_mark import read_mark

from .stores import StoreServer
from .support import stats


async def test_a_new_owner_fences_the_log_against_the_old_one(
    store_server: StoreServer, prefix: str
) -> None:
    settings = store_server.settings(prefix)
    store = S3Store(settings)
    old = ObjectLog(store, settings, "NOTES", "ab" * 32, b"o" * 16)
    new = ObjectLog(store, settings, "NOTES", "ab" * 32, b"n" * 16)
    assert old.take_epoch(-1) == 0
    assert old.append(EntryKind.SEGMENT, b"acknowledged") == 1
    assert new.take_epoch(0) is None  # the log moved on: read it again first
    assert new.take_epoch(1) == 2
    with pytest.raises(Fenced, match="another owner"):
        old.append(EntryKind.SEGMENT, b"never acknowledged")
    assert [new.read(seq).owner for seq in new.entries_after(None)] == [
        b"o" * 16,
        b"o" * 16,
        b"n" * 16,
    ]


async def test_an_append_whose_answer_was_lost_is_ours_on_the_next_try(
    moto_store: StoreServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store took the entry but its answer never came (a timeout): the shipper tries
    again, and the place holding the first try's bytes is this owner's, not a fence."""
    settings = moto_store.settings(prefix)
    store = S3Store(settings)
    log = ObjectLog(store, settings, "NOTES", "cd" * 32, b"o" * 16)
    assert log.take_epoch(-1) == 0
    real = S3Store.create
    lost: list[str] = []

    def create(self: S3Store, key: str, body: bytes) -> bool:
        created = real(self, key, body)
        if not lost:
            lost.append(key)
            raise StoreFailure("the answer was lost (a test's timeout)")
        return created

    monkeypatch.setattr(S3Store, "create", create)
    body = b"acknowledged once stored"
    with pytest.raises(StoreFailure):
        log.append(EntryKind.SEGMENT, body)
    await asyncio.sleep(0.002)  # a later try is sealed at a later time
    assert log.append(EntryKind.SEGMENT, body) == 1
    assert lost == [log.log_key(1)] and log.read(1).body == body
    assert log.append(EntryKind.SEGMENT, b"next") == 2


async def test_a_stale_owner_acknowledges_nothing_once_another_took_over(
    store_server: StoreServer, replicated_app: Callable[..., Path], prefix: str
) -> None:
    app_dir = replicated_app(store_server)
    async with start_app(app_dir) as old, start_app(app_dir) as new:  # two folders, one store
        stale = old.env.NOTES.get_by_name("contested")
        await stale.write("k", "old-1")
        fresh = new.env.NOTES.get_by_name("contested")
        assert await fresh.read("k") == "old-1"  # taken over: restored, then fenced
        await fresh.write("k", "new-1")
        with pytest.raises(HostUnavailable, match="another owner"):
            await stale.write("k", "old-2")
        assert await fresh.read("k") == "new-1"
        await fresh.write("k2", "new-2")
        object_hex = new.env.NOTES.id_from_name("contested").hex
    settings = store_server.settings(prefix)
    log = ObjectLog(S3Store(settings), settings, "NOTES", object_hex, b"\0" * 16)
    entries = [log.read(seq) for seq in log.entries_after(None)]
    epochs = [i for i, entry in enumerate(entries) if entry.kind is EntryKind.EPOCH]
    assert len(epochs) == 2
    owner = entries[epochs[-1]].owner
    assert {entry.owner for entry in entries[epochs[-1] :]} == {owner}
    # The epoch, then the new owner's two commits: two segments, or (acknowledged from its
    # host's log, written back as the app closed) one that holds both.
    assert len(entries) - epochs[-1] in (2, 3)


class Outage:
    """Make every conditional write to the store fail (the store is away) while on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.on = False
        real = S3Store.create

        def create(store: S3Store, key: str, body: bytes) -> bool:
            if self.on:
                raise StoreFailure("the store is away (a test's outage)")
            return real(store, key, body)

        monkeypatch.setattr(S3Store, "create", create)


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
    yield Outage(monkeypatch)


async def test_sync_writes_fail_while_the_store_is_away_and_recover_after(
    moto_store: StoreServer, replicated_app: Callable[..., Path], outage: Outage
) -> None:
    app_dir = replicated_app(moto_store, sync_deadline_s=0.5)
    async with start_app(app_dir) as app:
        stubs = [app.env.NOTES.get_by_name(f"o{i}") for i in range(4)]
        for stub in stubs:
            await stub.write("k", "stored")
        outage.on = True
        results = await asyncio.gather(
            *(stub.write("k", "lost") for stub in stubs), return_exceptions=True
        )
        for result in results:
            assert isinstance(result, HostUnavailable), result
            assert "a retry may be needed" in str(result)
            assert not result.retryable
        outage.on = False
        for stub in stubs:  # by themselves: restored from the store on their next event
            assert await stub.read("k") == "stored"
            await stub.write("k", "after")
    async with start_app(app_dir) as app:
        for i in range(4):
            assert await app.env.NOTES.get_by_name(f"o{i}").read("k") == "after"


async def test_a_commit_that_never_reached_the_store_is_absent_after_a_crash(
    moto_store: StoreServer, replicated_app: Callable[..., Path], outage: Outage, tmp_path: Path
) -> None:
    app_dir = replicated_app(moto_store, sync_deadline_s=1)
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    async with start_app(app_dir, storage=live) as app:
        stub = app.env.NOTES.get_by_name("crash")
        await stub.write("k", "acknowledged")
        outage.on = True
        unacknowledged = asyncio.ensure_future(stub.write("k", "committed locally only"))
        object_hex = app.env.NOTES.id_from_name("crash").hex
        wal = next((live / "NOTES").glob(f"??/{object_hex}.sqlite-wal"))
        size = wal.stat().st_size
        while wal.stat().st_size == size:  # the local commit is in the WAL, not in the store
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        # The disk of a node that dies now (the copy's lock files are held by nobody).
        shutil.copytree(live, crashed)
        assert not unacknowledged.done()
        with pytest.raises(HostUnavailable, match="a retry may be needed"):
            await unacknowledged
        outage.on = False
    async with start_app(app_dir, storage=crashed) as app:
        assert await app.env.NOTES.get_by_name("crash").read("k") == "acknowledged"
        assert stats(app).restores == 0  # the local file was current: its extra commit cut


@pytest.mark.parametrize("loss", ["cut", "torn"])
async def test_a_local_wal_that_lost_shipped_commits_is_restored_from_the_store(
    moto_store: StoreServer, replicated_app: Callable[..., Path], tmp_path: Path, loss: str
) -> None:
    """A power loss can take frames of a WAL that was never synced while the mark that says
    they were shipped survives: cut off its end, or left in place but torn (as when SQLite
    had restarted its log over the old one, whose frames SQLite then ignores). The file is
    behind what was acknowledged, and only the store has the rest."""
    app_dir = replicated_app(moto_store)
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    async with start_app(app_dir, storage=live) as app:
        stub = app.env.NOTES.get_by_name("power")
        await stub.write("k", "first")
        await stub.write("k", "acknowledged")
        object_hex = app.env.NOTES.id_from_name("power").hex
        shutil.copytree(live, crashed)
    wal = next((crashed / "NOTES").glob(f"??/{object_hex}.sqlite-wal"))
    mark = read_mark(wal.with_name(wal.name.removesuffix("-wal")))
    assert mark is not None and mark.wal.offset == wal.stat().st_size
    page_size = int.from_bytes(wal.read_bytes()[8:12], "big")
    if loss == "cut":
        os.truncate(wal, wal.stat().st_size - (24 + page_size))  # the last commit's last frame
    else:
        data = bytearray(wal.read_bytes())
        data[-page_size // 2] ^= 0xFF  # within the last commit's last page
        wal.write_bytes(bytes(data))
    async with start_app(app_dir, storage=crashed) as app:
        assert await app.env.NOTES.get_by_name("power").read("k") == "acknowledged"
        assert stats(app).restores == 1
    async with start_app(app_dir, storage=crashed) as app:  # and now it is current again
        assert await app.env.NOTES.get_by_name("power").read("k") == "acknowledged"
        assert stats(app).restores == 0
