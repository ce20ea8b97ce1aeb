"""Group commit under durability "full": one WAL sync covers every commit made while the
previous one ran, and no output leaves before the sync that covers it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path

import websockets

from raydo.actors._durability import WalSync, sync_wal
from raydo.gateway.testing import start_app
from raydo.storage import ObjectStorage, StorageCore


class GatedSync:
    """A real WAL sync that waits for the test to open a gate first, counting each run."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.runs = 0
        self.gate = threading.Event()

    def __call__(self) -> None:
        self.gate.wait(10)
        self.gate.clear()
        sync_wal(self.database)
        self.runs += 1


async def _settled(*futures: asyncio.Future[None] | None) -> list[bool]:
    await asyncio.sleep(0.05)
    return [f is None or f.done() for f in futures]


def test_commits_during_a_sync_share_the_next_one(tmp_path: Path) -> None:
    async def main() -> None:
        sync = GatedSync(tmp_path / "o.sqlite")
        group = WalSync(sync)
        core = StorageCore(
            sync.database, durability="full", sync_later=True, after_commit=group.committed
        )
        storage = ObjectStorage(core)

        def commit(key: str) -> asyncio.Future[None] | None:
            storage.put(key, 1)
            return core.commit()

        first = commit("a")  # starts a sync at once
        assert first is not None
        second, third = commit("b"), commit("c")  # wait for the next sync
        assert await _settled(first, second, third) == [False, False, False]
        sync.gate.set()
        await asyncio.wait_for(first, 5)
        assert await _settled(second, third) == [False, False]
        sync.gate.set()
        await asyncio.wait_for(asyncio.gather(second, third), 5)  # type: ignore[arg-type]
        assert sync.runs == 2  # three commits, two syncs
        assert group.committed(False) is None  # nothing left to make durable
        core.close()

    asyncio.run(main())


def test_a_read_only_event_waits_for_the_sync_of_what_it_may_have_read(tmp_path: Path) -> None:
    async def main() -> None:
        sync = GatedSync(tmp_path / "o.sqlite")
        group = WalSync(sync)
        wrote: list[bool] = []

        def committed(did_write: bool) -> asyncio.Future[None] | None:
            wrote.append(did_write)
            return group.committed(did_write)

        core = StorageCore(
            sync.database, durability="full", sync_later=True, after_commit=committed
        )
        storage = ObjectStorage(core)
        storage.put("k", 1)
        written = core.commit()
        assert storage.get("k") == 1
        read = core.commit()
        assert wrote == [True, False]
        assert read is not None  # it saw data that is not durable yet
        assert await _settled(written, read) == [False, False]
        sync.gate.set()
        await asyncio.wait_for(asyncio.gather(written, read), 5)  # type: ignore[arg-type]
        assert sync.runs == 1  # covered by the sync already running: no second one
        core.close()

    asyncio.run(main())


def test_a_failed_sync_fails_the_commits_it_covered(tmp_path: Path) -> None:
    async def main() -> None:
        def broken() -> None:
            raise OSError(5, "Input/output error")

        group = WalSync(broken)
        durable = group.committed(True)
        assert durable is not None
        try:
            await asyncio.wait_for(durable, 5)
        except OSError as exc:
            assert exc.errno == 5
        else:
            raise AssertionError("the failed sync went unnoticed")

    asyncio.run(main())


def test_the_connection_leaves_syncing_to_the_host(tmp_path: Path) -> None:
    inline = StorageCore(tmp_path / "a.sqlite", durability="full")
    later = StorageCore(tmp_path / "b.sqlite", durability="full", sync_later=True)
    for core in (inline, later):
        ObjectStorage(core).put("k", 1)
        core.commit()
    # White-box: user SQL may not read this PRAGMA, so ask the connection itself.
    rows = []
    for core in (inline, later):
        conn = core.connection()
        conn.set_authorizer(None)
        rows.append(conn.execute("PRAGMA synchronous").fetchone())
    assert rows == [(2,), (1,)]  # FULL in each COMMIT, NORMAL with the host's syncs
    inline.close()
    later.close()


def _full(folder: Path) -> Path:
    config = folder / "raydo.toml"
    config.write_text(
        config.read_text().replace('main = "app:app"', 'main = "app:app"\ndurability = "full"')
    )
    return folder


def test_concurrent_increments_of_one_object_are_exact(app_copy: Callable[[str], Path]) -> None:
    async def main() -> None:
        async with start_app(_full(app_copy("counter"))) as app:
            stub = app.env.COUNTER.get_by_name("busy")
            values = await asyncio.gather(*(stub.increment() for _ in range(200)))
            assert sorted(values) == list(range(1, 201))
            assert await stub.value() == 200
            replies = await asyncio.gather(
                *(app.http.post("/counter/busy/increment") for _ in range(50))
            )
            assert sorted(r.json()["value"] for r in replies) == list(range(201, 251))

    asyncio.run(main())


def test_sends_and_replies_keep_their_order_under_group_commit(
    app_copy: Callable[[str], Path],
) -> None:
    async def main() -> None:
        folder = _full(app_copy("chat"))
        async with start_app(folder) as app:
            url = app.websocket_url("/room/durable/ws")
            async with (
                websockets.connect(url + "?name=a") as a,
                websockets.connect(url + "?name=b") as b,
            ):
                for i in range(50):
                    await a.send(json.dumps({"text": f"m{i}"}))
                seen: list[str] = []
                while len(seen) < 50:
                    event = json.loads(await asyncio.wait_for(b.recv(), 10))
                    if event["type"] == "message":
                        seen.append(event["text"])
                assert seen == [f"m{i}" for i in range(50)]
            history = (await app.http.get("/room/durable/history")).json()
            assert [m["text"] for m in history][-50:] == [f"m{i}" for i in range(50)]

    asyncio.run(main())
