"""Reference scenario 15 (``durable-objects.md`` §3), gates mode, in process: a write made
with ``allow_unconfirmed`` does not hold the reply for its durability, ``storage.sync()``
resolves only once it is durable, and one that never becomes durable still resets the object.

Durability here is sync replication to a real S3 server (moto), reached through a TCP relay
the test can hold (bytes wait in it: the store seems slow) or break (connections are refused:
the store is gone). A store round then cannot end, so what waits for it is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from raydo.gateway.testing import TestApp, start_app
from tests.gates.conftest import MakeApp
from tests.replication.stores import StoreServer

T = TypeVar("T")

# Small against the seconds a round may take on a loaded machine, large against a round.
WAIT_S = 60.0
QUIET_S = 1.0  # how long something that must not finish is watched for


class Relay:
    """A TCP relay from 127.0.0.1 to ``target``, on an event loop of its own thread (the
    gateway's start probes the store from the test's loop, blocking it): held, bytes wait in
    it; broken, every connection (open or new) is cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self.broken = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> Relay:
        self._thread.start()
        self.port = self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _start(self) -> int:
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _stop(self) -> None:
        self._flowing.set()
        self._cut()
        self._server.close()

    def hold(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)

    def break_(self) -> None:
        async def cut() -> None:
            self.broken = True
            self._cut()
            self._flowing.set()

        self._call(cut())

    def mend(self) -> None:
        async def mend() -> None:
            self.broken = False

        self._call(mend())

    def _cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.broken:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await self._flowing.wait()
            if self.broken:
                return
            writer.write(data)
            await writer.drain()


@pytest.fixture
def relay(moto_store: StoreServer) -> Iterator[Relay]:
    host, port = moto_store.endpoint.removeprefix("http://").split(":")
    with Relay((host, int(port))) as made:
        yield made


@pytest.fixture
def replicated_gates(
    gates_dir: MakeApp, moto_store: StoreServer, relay: Relay
) -> Callable[..., Path]:
    def make(sync_deadline_s: float = 60.0) -> Path:
        folder = gates_dir()
        toml = folder / "raydo.toml"
        toml.write_text(
            toml.read_text()
            + "\n[replication]\n"
            + f'url = "s3://{moto_store.bucket}/u-{uuid.uuid4().hex[:12]}"\n'
            + f'endpoint_url = "http://127.0.0.1:{relay.port}"\n'
            + f"sync_deadline_s = {sync_deadline_s}\n"
        )
        return folder

    return make


async def finishes_soon(awaitable: asyncio.Future[object]) -> bool:
    """Whether ``awaitable`` finishes within QUIET_S (it is left running if not)."""
    done, _ = await asyncio.wait({awaitable}, timeout=QUIET_S)
    return bool(done)


@pytest.fixture(scope="module")
def placement() -> dict[str, object]:
    return {}  # in process: the relay runs in the test's own event loop


async def test_scenario_15_an_unconfirmed_write_does_not_hold_the_reply_and_sync_waits(
    replicated_gates: Callable[..., Path], relay: Relay
) -> None:
    async with start_app(replicated_gates()) as app:
        room = app.env.GATED.get_by_name("unconfirmed")
        assert await room.put_confirmed("warm", 1) == "returned"  # taken over, store reached
        relay.hold()  # the store stops answering: no round can end
        # The unconfirmed write's reply leaves once it is committed.
        assert await asyncio.wait_for(room.put_unconfirmed("u", 1), WAIT_S) == "returned"
        # sync() waits for it to be in the store; so does a confirmed write's reply.
        syncing = asyncio.ensure_future(room.sync())
        confirmed = asyncio.ensure_future(room.put_confirmed("c", 2))
        assert not await finishes_soon(syncing)
        assert not confirmed.done()
        relay.release()
        assert await asyncio.wait_for(syncing, WAIT_S) == "synced"
        assert await asyncio.wait_for(confirmed, WAIT_S) == "returned"
        assert await room.get("u") == 1 and await room.get("c") == 2
        assert await room.constructions() == 1  # nothing was reset


async def test_scenario_15_an_unconfirmed_write_that_never_becomes_durable_resets_the_object(
    replicated_gates: Callable[..., Path], relay: Relay
) -> None:
    async with start_app(replicated_gates(sync_deadline_s=1.0)) as app:
        room = app.env.GATED.get_by_name("lost")
        assert await room.put_confirmed("warm", 1) == "returned"
        assert await room.constructions() == 1
        relay.break_()  # the store is gone: every round fails until its deadline
        assert await asyncio.wait_for(room.put_unconfirmed("u", 1), WAIT_S) == "returned"
        with contextlib.suppress(Exception):  # it raises: its writes never became durable
            await asyncio.wait_for(room.sync(), WAIT_S)
        relay.mend()  # the store is back for whatever comes next
        # The object was reset: its next event builds it anew.
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            try:
                if await room.constructions() == 2:
                    break
            except Exception:  # noqa: BLE001 - restored from the store meanwhile: asked again
                pass
            assert asyncio.get_running_loop().time() < deadline, "the object was never reset"
            await asyncio.sleep(0.1)


async def test_allow_unconfirmed_is_checked_and_sync_without_durability_is_at_once(
    app: TestApp,
) -> None:
    room = app.env.GATED.get_by_name("plain")
    assert await room.put_unconfirmed("k", 1) == "returned"
    assert await room.sync() == "synced"  # durability "normal", no replication: nothing waits
    assert await room.get("k") == 1
