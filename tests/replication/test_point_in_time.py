"""Point-in-time recovery: bookmarks sort in time order, a restore to an earlier bookmark
gives the very data of then, its undo gives the later data back, and a bookmark past
retention or a string that is not one is refused; the operators' commands do the same."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from raydo.actors import HostUnavailable, ObjectError, ObjectReset
from raydo.gateway import cli
from raydo.gateway.testing import CONFIGURED_STORAGE, start_app
from raydo.storage.replication import ObjectLog, ReplicationSettings, S3Store
from raydo.storage.replication.bookmarks import (
    BookmarkUnavailable,
    apply_retention,
    parse_bookmark,
)

from .stores import StoreServer


async def test_restore_to_an_earlier_bookmark_and_undo_it(
    store_server: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    app_dir = replicated_app(store_server)
    async with start_app(app_dir) as app:
        stub = app.env.NOTES.get_by_name("travel")
        marks, digests = [], []
        for key in ("a", "b", "c"):
            await stub.write(key, f"value {key}")
            marks.append(await stub.bookmark())
            digests.append(await stub.digest())
        assert marks == sorted(marks) and len(set(marks)) == 3
        assert await stub.bookmark() == marks[-1]  # nothing written since

        with pytest.raises(ObjectReset):
            await stub.restore_to(marks[0], restart=True)
        stub = app.env.NOTES.get_by_name("travel")  # an aborted object's stub stays broken
        assert await stub.digest() == digests[0]
        assert await stub.read("b") is None
        undo = await stub.bookmark()
        assert undo > marks[-1]  # the restore is a later point of the log, not a rewrite

        # Restore to the state before the restore: the undo the first call gave.
        again = await app.env.NOTES.get_by_name("travel").restore_to(undo)
        assert again == undo
        undo_of_first = await app.env.NOTES.get_by_name("travel").restore_to(marks[-1])
        assert undo_of_first == undo  # still this session's state: not restored yet
        assert await app.evict("NOTES", "travel")  # the next session starts at marks[-1]
        assert await stub.digest() == digests[-1]
        await stub.write("d", "after")  # and goes on from there
        assert await stub.read("c") == "value c"
    async with start_app(app_dir) as app:  # another node: the store
        stub = app.env.NOTES.get_by_name("travel")
        assert await stub.read("d") == "after" and await stub.read("c") == "value c"


async def test_bookmark_for_time_and_refusals(
    moto_store: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    async with start_app(replicated_app(moto_store)) as app:
        stub = app.env.NOTES.get_by_name("times")
        await stub.write("k", "early")
        early = await stub.bookmark()
        await asyncio.sleep(0.05)  # the next round is written at a later ms
        between = datetime.now(UTC)
        await asyncio.sleep(0.05)
        await stub.write("k", "late")
        late = await stub.bookmark()
        assert await stub.bookmark_for(between) == early
        assert await stub.bookmark_for(between.timestamp() * 1000) == early
        assert await stub.bookmark_for(time.time() * 1000 + 60_000) == late

        # The object's code sees a ValueError (its caller an ObjectError that names it).
        with pytest.raises(ObjectError, match="ValueError: 'not-a-bookmark' is not a bookmark"):
            await stub.restore_to("not-a-bookmark")
        with pytest.raises(ValueError, match="'0001-zz' is not a bookmark"):
            parse_bookmark("0001-zz")
        other = parse_bookmark(early)
        forged = f"00000001-{other.written_ms + 1:016x}-{other.seq:016x}"
        with pytest.raises(ObjectError, match=r"BookmarkUnavailable: .* not one of this object's"):
            await stub.restore_to(forged)
        with pytest.raises(ObjectError, match=r"BookmarkUnavailable: .* older than retention_days"):
            await stub.bookmark_for(datetime(2000, 1, 1, tzinfo=UTC))
        assert await stub.read("k") == "late"  # a refused restore changes nothing


async def test_a_bookmark_past_retention_is_refused(
    moto_store: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    # retention of 0.3 s (retention_days is a float)
    async with start_app(replicated_app(moto_store, retention_days=0.3 / 86400)) as app:
        stub = app.env.NOTES.get_by_name("old")
        await stub.write("k", "v")
        old = await stub.bookmark()
        await asyncio.sleep(0.5)
        await stub.write("k", "w")
        with pytest.raises(ObjectError, match=r"BookmarkUnavailable: .* older than retention_days"):
            await stub.restore_to(old)
        assert issubclass(BookmarkUnavailable, ValueError)


async def test_without_replication_the_calls_name_the_config(
    app_copy: Callable[[str], Path],
) -> None:
    async with start_app(app_copy("replicated")) as app:
        stub = app.env.NOTES.get_by_name("local")
        await stub.write("k", "v")
        with pytest.raises(Exception, match=r"needs \[replication\] in raydo.toml"):
            await stub.bookmark()


def test_retention_keeps_the_newest_snapshot_and_what_follows(
    moto_store: StoreServer, prefix: str, tmp_path: Path
) -> None:
    settings = ReplicationSettings(
        moto_store.bucket, prefix, endpoint_url=moto_store.endpoint, retention_days=1.0
    )
    store = S3Store(settings)
    log = ObjectLog(store, settings, "NOTES", "ab" * 32, b"\1" * 16)
    from raydo.storage.replication.segments import EntryKind

    log.append(EntryKind.SNAPSHOT, b"")
    log.append(EntryKind.EPOCH)
    newest = log.append(EntryKind.SNAPSHOT, b"")
    log.append(EntryKind.EPOCH)
    assert apply_retention(log, settings) == 0  # all within a day
    later = int(time.time() * 1000) + 2 * 86_400_000  # two days on: all of it is past
    assert apply_retention(log, settings, now=later) == 3  # two entries and a marker
    assert log.entries_after(None) == [newest, newest + 1]
    assert log.snapshots() == [newest]
    assert apply_retention(log, settings, now=later) == 0


def test_operators_restore_an_object_and_a_database(
    moto_store: StoreServer,
    replicated_app: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app_dir = replicated_app(moto_store)

    async def write(value: str) -> tuple[str, str]:
        async with start_app(app_dir) as app:
            await app.env.NOTES.get_by_name("ops").write("k", value)
            await app.env.DB.exec(
                f"CREATE TABLE IF NOT EXISTS t (x); INSERT INTO t VALUES ('{value}')"
            )
            return await app.env.NOTES.get_by_name("ops").bookmark(), value

    first, _ = asyncio.run(write("one"))
    assert cli.main(["d1", "time-travel", "info", "DB", "--dir", str(app_dir), "--json"]) == 0
    db_first = json.loads(capsys.readouterr().out)["bookmark"]
    asyncio.run(write("two"))

    assert (
        cli.main(
            [
                "objects",
                "restore",
                "NOTES",
                "ops",
                "--bookmark",
                first,
                "--dir",
                str(app_dir),
                "--json",
            ]
        )
        == 0
    )
    undo = json.loads(capsys.readouterr().out)["previous_bookmark"]
    assert (
        cli.main(
            ["d1", "time-travel", "restore", "DB", "--bookmark", db_first, "--dir", str(app_dir)]
        )
        == 0
    )
    assert "undo with --bookmark" in capsys.readouterr().out

    async def read() -> tuple[str, list[str]]:
        async with start_app(app_dir) as app:
            rows = await app.env.DB.prepare("SELECT x FROM t").all()
            return (
                await app.env.NOTES.get_by_name("ops").read("k"),
                [r["x"] for r in rows.results],
            )

    assert asyncio.run(read()) == ("one", ["one"])
    assert (
        cli.main(["objects", "restore", "NOTES", "ops", "--bookmark", undo, "--dir", str(app_dir)])
        == 0
    )
    assert asyncio.run(read())[0] == "two"

    assert (
        cli.main(
            ["objects", "restore", "NOTES", "ops", "--bookmark", "nope", "--dir", str(app_dir)]
        )
        == 2
    )
    assert "'nope' is not a bookmark" in capsys.readouterr().err
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "raydo.toml").write_text(
        (app_dir / "raydo.toml").read_text().split("\n[replication]")[0]
    )
    assert cli.main(["d1", "time-travel", "info", "DB", "--dir", str(plain)]) == 2
    assert "replication" in capsys.readouterr().err


async def test_a_restore_while_the_app_runs_is_refused_unless_asked_for(
    moto_store: StoreServer,
    replicated_app: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app_dir = replicated_app(moto_store)
    restore = ["objects", "restore", "NOTES", "ops", "--dir", str(app_dir), "--json"]
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        notes = app.env.NOTES.get_by_name("ops")
        await notes.write("k", "one")
        first = await notes.bookmark()
        await notes.write("k", "two")
        # In a thread: the CLI blocks, and the app's hosts run on this loop.
        code = await asyncio.to_thread(cli.main, [*restore, "--bookmark", first])
        assert code == 2
        error = capsys.readouterr().err
        assert "the app is running on" in error and "--while-running" in error
        assert await notes.read("k") == "two"  # nothing was restored
        code = await asyncio.to_thread(cli.main, [*restore, "--bookmark", first, "--while-running"])
        assert code == 0, capsys.readouterr().err
        report = json.loads(capsys.readouterr().out)
        assert report["restored_to"] == first
        # "two" was acknowledged from the host's log: the tool carried it into the object's
        # log first (the undo holds it) and sealed that log, so the host takes no more.
        with pytest.raises(HostUnavailable, match="another owner"):
            await notes.write("k", "after the restore")
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        assert await app.env.NOTES.get_by_name("ops").read("k") == "one"
    undo = [*restore, "--bookmark", report["previous_bookmark"]]
    assert await asyncio.to_thread(cli.main, undo) == 0, capsys.readouterr().err
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        assert await app.env.NOTES.get_by_name("ops").read("k") == "two"


async def test_the_platform_face_restores_as_cloudflare_spells_it(
    moto_store: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    app_dir = replicated_app(moto_store)
    toml = app_dir / "raydo.toml"
    toml.write_text(
        toml.read_text().replace(
            "[[d1_databases]]",
            '[[durable_objects.bindings]]\nname = "PLATFORM"\n'
            'class_name = "platform_notes:PlatformNotes"\n\n[[d1_databases]]',
        )
    )
    async with start_app(app_dir) as app:
        stub = app.env.PLATFORM.get_by_name("p")
        await stub.write("k", "first")
        first = await stub.bookmark()
        await stub.write("k", "second")
        assert await stub.bookmark_for(time.time() * 1000 + 60_000) > first
        with pytest.raises(ObjectReset):
            await stub.restore_to(first)
        assert await app.env.PLATFORM.get_by_name("p").read("k") == "first"
