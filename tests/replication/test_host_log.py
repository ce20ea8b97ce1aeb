"""The host log: the commits of many objects go to the store in one write per round, are
acknowledged from there, reach a new owner anywhere (which seals the old host's stream, so it
acknowledges nothing more), and are written into each object's own log after a while."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from raydo.actors import HostUnavailable
from raydo.actors.placement import LocalPlacement
from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import TestApp, start_app
from raydo.storage.replication import (
    CorruptEntry,
    Entry,
    EntryKind,
    ReplicationSettings,
    S3Store,
    StoreFailure,
)
from raydo.storage.replication.journal import (
    HostLog,
    Location,
    decode_slot,
    encode_slot,
    object_digest,
    seal_and_read,
    slot_key,
    stream_prefix,
)

from .stores import StoreServer
from .support import stats, store_requests

OBJECTS = 24


async def test_many_objects_share_slots_and_a_new_owner_carries_their_commits_over(
    store_server: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    app_dir = replicated_app(store_server, write_back_s=600)
    names = [f"m{i}" for i in range(OBJECTS)]
    async with start_app(app_dir) as old:
        stubs = [old.env.NOTES.get_by_name(name) for name in names]
        for stub in stubs:  # each object's first round: a snapshot in its own log
            await stub.write("k", "first")
        before = stats(old)
        for wave in range(4):
            await asyncio.gather(
                *(s.write("k", f"{n}-{wave}") for n, s in zip(names, stubs, strict=True))
            )
        after = stats(old)
        versions = after.versions - before.versions
        slots = after.slots - before.slots
        assert versions == 4 * OBJECTS
        assert 1 <= slots < versions, (slots, versions)  # one store write for many commits
        assert after.segments == before.segments  # nothing is in the objects' own logs yet
        # Another folder, the old host alive: the store's host log is the only copy.
        async with start_app(app_dir) as new:
            for name in names:
                assert await new.env.NOTES.get_by_name(name).read("k") == f"{name}-3"
            assert stats(new).restores == OBJECTS
            with pytest.raises(HostUnavailable, match="another owner"):
                await stubs[0].write("k", "stale")  # its host's stream is sealed
            assert await new.env.NOTES.get_by_name(names[0]).read("k") == f"{names[0]}-3"
            await new.env.NOTES.get_by_name(names[1]).write("k", "new owner")
    async with start_app(app_dir) as later:  # the stale host wrote nothing over the new owner
        assert await later.env.NOTES.get_by_name(names[1]).read("k") == "new owner"
        assert await later.env.NOTES.get_by_name(names[2]).read("k") == f"{names[2]}-3"


async def test_commits_left_in_the_host_log_are_written_back_then_the_object_is_idle(
    moto_store: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    async with start_app(replicated_app(moto_store, write_back_s=0.5)) as app:
        stub = app.env.NOTES.get_by_name("quiet")
        await stub.write("a", "1")  # a snapshot
        await stub.write("b", "2")  # a version in the host log
        assert stats(app).versions == 1 and stats(app).segments == 0
        deadline = time.monotonic() + 10
        while stats(app).segments < 1:  # written into its own log, unasked
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        before = store_requests(app)
        await asyncio.sleep(1.5)
        assert store_requests(app) == before


async def test_a_crash_with_commits_only_in_the_host_log_restarts_without_a_restore(
    moto_store: StoreServer, replicated_app: Callable[..., Path], tmp_path: Path
) -> None:
    app_dir = replicated_app(moto_store, write_back_s=600)
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    async with start_app(app_dir, storage=live) as app:
        stub = app.env.NOTES.get_by_name("crash")
        await stub.write("k", "first")
        await stub.write("k", "acknowledged from the host log")
        assert stats(app).versions == 1
        shutil.copytree(live, crashed)  # the disk of a node that dies now
        async with start_app(app_dir, storage=crashed) as restarted:
            again = restarted.env.NOTES.get_by_name("crash")
            assert await again.read("k") == "acknowledged from the host log"
            assert stats(restarted).restores == 0  # the local file held the carried version
            await again.write("k", "after")
    async with start_app(app_dir) as elsewhere:
        assert await elsewhere.env.NOTES.get_by_name("crash").read("k") == "after"


async def test_a_host_log_off_writes_every_round_into_the_objects_own_log(
    moto_store: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    async with start_app(replicated_app(moto_store, host_log=False)) as app:
        stub = app.env.NOTES.get_by_name("direct")
        for i in range(3):
            await stub.write("k", i)
        assert stats(app).versions == 0 and stats(app).slots == 0
        assert stats(app).segments == 2


def test_a_slot_holds_its_versions_and_an_index_slot_the_whole_map() -> None:
    one, two = object_digest("p/NOTES/aa"), object_digest("p/NOTES/bb")
    versions = [(one, b"v" * 10), (two, b"w" * 7)]
    old = {object_digest("p/NOTES/cc"): Location(3, 40, 5), one: Location(2, 50, 9)}
    data, places = encode_slot(b"s" * 16, versions, old, 32)
    kind, index, found = decode_slot(data, 32, "slot 32")
    assert kind is EntryKind.JOURNAL
    assert found == list(zip((one, two), places, strict=True))
    assert index == {**old, one: places[0], two: places[1]}
    assert [data[p.offset : p.offset + p.length] for p in places] == [b"v" * 10, b"w" * 7]
    plain, _ = encode_slot(b"s" * 16, versions, None, 33)
    assert decode_slot(plain, 33, "slot 33")[1] is None


@pytest.mark.parametrize("damage", ["flip", "cut", "not a slot"])
def test_a_damaged_slot_is_refused(damage: str) -> None:
    data, _ = encode_slot(b"s" * 16, [(object_digest("x"), b"v" * 10)], {}, 0)
    if damage == "flip":
        broken = bytearray(data)
        broken[40] ^= 1
        data = bytes(broken)
    elif damage == "cut":
        data = data[:-5]
    else:
        data = Entry(EntryKind.SEGMENT, b"s" * 16, 0, b"body").seal()
    with pytest.raises(CorruptEntry):
        decode_slot(data, 0, "slot 0")


async def test_sealing_a_stream_refuses_its_next_slot_and_reads_its_map(
    moto_store: StoreServer, prefix: str
) -> None:
    settings = moto_store.settings(prefix)
    store = S3Store(settings)
    host = HostLog(store, settings)
    try:
        digest = object_digest("an object")
        version = Entry(EntryKind.SEGMENT, b"o" * 16, 1, b"pages").seal()
        for _ in range(INDEXED := 3):
            host.submit(host.stream, digest, version, time.monotonic() + 5).result(10)
        stream = host.stream
        found = seal_and_read(S3Store(settings), settings, stream)
        assert found[digest].slot == INDEXED - 1
        entry, _ = host.read(stream, found[digest])
        assert entry.body == b"pages"
        refused = host.submit(stream, digest, version, time.monotonic() + 5)
        with pytest.raises(Exception, match="another owner"):
            refused.result(10)
        assert host.stream != stream  # it goes on in a new stream
        assert store.get(slot_key(settings, stream, INDEXED + 1)) is None
        # A stream nobody wrote is sealed at its first slot.
        assert seal_and_read(store, settings, "ab" * 16) == {}
        assert store.get(slot_key(settings, "ab" * 16, 0)) is not None
    finally:
        host.close()


@pytest.mark.parametrize("value", ['"yes"', "1"])
def test_host_log_in_the_config_is_true_or_false(tmp_path: Path, value: str) -> None:
    (tmp_path / "raydo.toml").write_text(
        'name = "x"\nmain = "app:app"\n[replication]\nurl = "s3://bucket-name/prefix"\n'
        f"host_log = {value}\n"
    )
    with pytest.raises(ConfigError, match=r"host_log.*true or false"):
        load_config(tmp_path)


def streams(server: StoreServer, prefix: str) -> set[str]:
    """The host log streams that have keys in the store under ``prefix``."""
    listed = server.client().list_objects_v2(Bucket=server.bucket, Prefix=f"{prefix}/_journal/")
    return {item["Key"].split("/")[2] for item in listed.get("Contents", [])}


def host_logs(app: TestApp) -> list[HostLog]:
    placement = app.gateway.placement
    assert isinstance(placement, LocalPlacement)
    return [
        host.replication.host_log
        for host in placement.hosts.values()
        if host.replication is not None and host.replication.host_log is not None
    ]


async def test_after_a_failed_slot_the_hosts_other_objects_go_back_to_the_host_log(
    moto_store: StoreServer,
    replicated_app: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    prefix: str,
) -> None:
    app_dir = replicated_app(moto_store, sync_deadline_s=0.5, write_back_s=600)
    async with start_app(app_dir) as app:
        ids = {f"o{i}": app.env.NOTES.id_from_name(f"o{i}").hex for i in range(9)}
        shard = {name: int(hex_id[:16], 16) % 2 for name, hex_id in ids.items()}  # 2 hosts
        busy = "o0"
        idle = next(name for name in shard if name != busy and shard[name] == shard[busy])
        for name in (busy, idle):  # a snapshot each, then a version each
            await app.env.NOTES.get_by_name(name).write("k", "first")
            await app.env.NOTES.get_by_name(name).write("k", "second")
        outage = [True]
        real = S3Store.create

        def create(store: S3Store, key: str, body: bytes) -> bool:
            if outage[0]:
                raise StoreFailure("the store is away (a test's outage)")
            return real(store, key, body)

        monkeypatch.setattr(S3Store, "create", create)
        given_up = sorted(streams(moto_store, prefix))
        with pytest.raises(HostUnavailable, match="a retry may be needed"):
            await app.env.NOTES.get_by_name(busy).write("k", "never acknowledged")
        outage[0] = False
        before = stats(app)
        # Its host's stream was given up: a direct round, then an epoch under the new one.
        await app.env.NOTES.get_by_name(idle).write("k", "third")
        middle = stats(app)
        assert middle.segments == before.segments + 1
        assert middle.versions == before.versions
        await app.env.NOTES.get_by_name(idle).write("k", "fourth")
        after = stats(app)
        assert after.versions == middle.versions + 1
        assert after.segments == middle.segments
        assert await app.env.NOTES.get_by_name(busy).read("k") == "second"  # taken over here
        # Both of its objects are in their own logs or taken over again: the stream the host
        # gave up is deleted.
        assert given_up
        assert not (set(given_up) & streams(moto_store, prefix))
        assert not any(host.retired for host in host_logs(app))
    async with start_app(app_dir) as elsewhere:
        assert await elsewhere.env.NOTES.get_by_name(idle).read("k") == "fourth"
        assert await elsewhere.env.NOTES.get_by_name(busy).read("k") == "second"


async def test_an_epoch_whose_answer_was_lost_is_found_and_the_object_kept(
    moto_store: StoreServer,
    replicated_app: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a given-up stream, an object's direct round is followed by an epoch under the
    new stream. That epoch lands but its answer is lost: the next round must find its own
    bytes there and go on after them, not take the place for another owner's and drop
    the object."""
    app_dir = replicated_app(moto_store, sync_deadline_s=0.5, write_back_s=600)
    async with start_app(app_dir) as app:
        ids = {f"o{i}": app.env.NOTES.id_from_name(f"o{i}").hex for i in range(9)}
        shard = {name: int(hex_id[:16], 16) % 2 for name, hex_id in ids.items()}  # 2 hosts
        busy = "o0"
        idle = next(name for name in shard if name != busy and shard[name] == shard[busy])
        for name in (busy, idle):
            await app.env.NOTES.get_by_name(name).write("k", "first")
            await app.env.NOTES.get_by_name(name).write("k", "second")
        outage, lost = [True], list[str]()
        real = S3Store.create

        def create(store: S3Store, key: str, body: bytes) -> bool:
            if outage[0]:
                raise StoreFailure("the store is away (a test's outage)")
            stored = real(store, key, body)
            epoch = "/log/" in key and Entry.unseal(body, key).kind is EntryKind.EPOCH
            if epoch and ids[idle] in key and not lost:
                lost.append(key)
                raise StoreFailure("the answer was lost (a test's network)")
            return stored

        monkeypatch.setattr(S3Store, "create", create)
        with pytest.raises(HostUnavailable, match="a retry may be needed"):
            await app.env.NOTES.get_by_name(busy).write("k", "never acknowledged")
        outage[0] = False
        before = stats(app)
        await app.env.NOTES.get_by_name(idle).write("k", "third")  # direct; its epoch "fails"
        assert lost and stats(app).segments == before.segments + 1
        await app.env.NOTES.get_by_name(idle).write("k", "fourth")  # direct, after the epoch
        middle = stats(app)
        assert middle.segments == before.segments + 2 and middle.versions == before.versions
        await app.env.NOTES.get_by_name(idle).write("k", "fifth")  # the host log again
        after = stats(app)
        assert after.versions == middle.versions + 1 and after.segments == middle.segments
        assert await app.env.NOTES.get_by_name(idle).read("k") == "fifth"
    async with start_app(app_dir) as elsewhere:
        assert await elsewhere.env.NOTES.get_by_name(idle).read("k") == "fifth"


async def test_slots_the_last_index_points_at_are_kept(
    moto_store: StoreServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object written back while an index slot is in flight is forgotten by the writer,
    but that index still points at its version: deleting old slots must keep it."""
    settings = moto_store.settings(prefix)
    host = HostLog(S3Store(settings), settings)
    quiet, busy = object_digest("written back"), object_digest("busy")
    real = S3Store.create

    def create(store: S3Store, key: str, body: bytes) -> bool:
        if key == slot_key(settings, host.stream, 64):
            host.forget(quiet)  # its write-back ends while slot 64 (an index slot) is stored
        return real(store, key, body)

    monkeypatch.setattr(S3Store, "create", create)
    try:
        version = Entry(EntryKind.SEGMENT, b"o" * 16, 1, b"quiet pages").seal()
        host.submit(host.stream, quiet, version, time.monotonic() + 5).result(10)
        for _ in range(64):
            host.submit(host.stream, busy, version, time.monotonic() + 5).result(10)
    finally:
        host.close()  # after the deletion in progress (deletes run beside the writer)
    stream = host.stream
    found = seal_and_read(S3Store(settings), settings, stream)
    assert found[quiet].slot == 0  # what a new owner reads from index slot 64
    entry, _ = host.read(stream, found[quiet])
    assert entry.body == b"quiet pages"


def written_stream(store: S3Store, settings: ReplicationSettings, slots: int) -> HostLog:
    """A host log, closed, whose one busy object wrote ``slots`` versions ("pages n"), one a
    slot."""
    host = HostLog(store, settings)
    busy = object_digest("busy")
    try:
        for n in range(slots):
            version = Entry(EntryKind.SEGMENT, b"o" * 16, 1, f"pages {n}".encode()).seal()
            host.submit(host.stream, busy, version, time.monotonic() + 5).result(10)
    finally:
        host.close()
    return host


async def test_old_slots_are_deleted_in_batches_beside_the_writer(
    moto_store: StoreServer, prefix: str
) -> None:
    """One busy object: at slot 128 (a deletion batch and an index slot) every slot before
    its version and the last index (127) goes; what a new owner needs stays."""
    settings = moto_store.settings(prefix)
    store = S3Store(settings)
    host = written_stream(store, settings, 130)
    busy, stream = object_digest("busy"), host.stream
    kept = sorted(
        int(key.rsplit("/", 1)[1], 16) for key in store.keys(stream_prefix(settings, stream))
    )
    assert kept == [127, 128, 129]
    found = seal_and_read(store, settings, stream)
    entry, _ = host.read(stream, found[busy])
    assert found[busy].slot == 129 and entry.body == b"pages 129"


async def test_a_slot_deleted_below_the_last_index_is_no_gap_to_seal(
    moto_store: StoreServer, prefix: str
) -> None:
    """The writer deletes old slots while it writes, in any order: a new owner whose listing
    misses one below the last index slot must not seal it (that would end the stream there,
    before the versions after the index)."""
    settings = moto_store.settings(prefix)
    store = S3Store(settings)
    host = written_stream(store, settings, 41)
    busy, stream = object_digest("busy"), host.stream
    store.delete([slot_key(settings, stream, 5)])  # a deletion halfway through
    found = seal_and_read(store, settings, stream)
    assert found[busy].slot == 40
    assert store.get(slot_key(settings, stream, 5)) is None  # no seal went there
    assert store.get(slot_key(settings, stream, 41)) is not None  # the seal


async def test_a_seal_ahead_of_the_writer_seals_the_slots_it_skipped(
    moto_store: StoreServer, prefix: str
) -> None:
    """A new owner that sealed a busy stream a few slots ahead (and then died) left free
    slots below its seal: the next one seals them, so the writer can write none of them."""
    settings = moto_store.settings(prefix)
    store = S3Store(settings)
    host = HostLog(store, settings)
    try:
        digest = object_digest("an object")
        version = Entry(EntryKind.SEGMENT, b"o" * 16, 1, b"pages").seal()
        for _ in range(2):  # slots 0 and 1
            host.submit(host.stream, digest, version, time.monotonic() + 5).result(10)
        stream = host.stream
        ahead = Entry(EntryKind.SEAL, b"s" * 16, 1, b"").seal()
        assert store.create(slot_key(settings, stream, 4), ahead)
        found = seal_and_read(S3Store(settings), settings, stream)
        assert found[digest].slot == 1
        skipped = store.get(slot_key(settings, stream, 2))
        assert skipped is not None and decode_slot(skipped, 2, "slot 2")[0] is EntryKind.SEAL
        with pytest.raises(Exception, match="another owner"):
            host.submit(stream, digest, version, time.monotonic() + 5).result(10)
    finally:
        host.close()
