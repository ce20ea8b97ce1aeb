"""Sockets reconciled after a crash: the socket index, a restarted host's grace period, and a
gateway that comes back without the sockets it had (issue 13, item 3). The real-process
versions (SIGKILL of a gateway and a host) are in ``tests/integration/test_ray_failures.py``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from raydo.actors import BindingSpec, RuntimeSpec
from raydo.actors._http import fetch_request
from raydo.actors._payloads import (
    ClosePush,
    FetchReply,
    FetchRequest,
    SocketClose,
    Upgrade,
    decode_payload,
)
from raydo.actors._socket_index import IndexedSocket, SocketIndex
from raydo.actors.placement import LocalPlacement
from raydo.actors.types import Event, EventKind
from raydo.actors.websockets import HostSockets, accept_response
from raydo.actors.websockets import _links as links_module
from raydo.storage import StorageCore, layout
from raydo.storage.limits import DEFAULT_LIMITS
from tests.actors._support import REPO_ROOT
from tests.polling import poll


def host_sockets(index: SocketIndex, delivered: list[Event]) -> HostSockets:
    def deliver_local(event: Event) -> asyncio.Future[Any]:
        delivered.append(event)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    return HostSockets(
        "ROOM", DEFAULT_LIMITS, deliver_local, lambda: "own", index=index, host="ROOM/shard/0"
    )


def accept(sockets: HostSockets, storage: StorageCore, object_hex: str, sid: str) -> None:
    """What an upgrade's turn does to a socket: accept it, answer 101, commit."""
    view = sockets.object_sockets(storage, object_hex)
    gateway = sid.split(".")[0]
    fetch = FetchRequest("GET", "/ws", b"", [], b"", Upgrade(sid, gateway))
    request = fetch_request(fetch)
    sockets.prepare_upgrade(request, fetch)
    accept_response(request, view, [])
    sockets.answer_upgrade(view, object_hex, fetch, FetchReply(101, [], b""))
    storage.commit()


def lost(delivered: list[Event]) -> list[tuple[str, str, int]]:
    closes = []
    for event in delivered:
        assert event.kind is EventKind.WS_CLOSE
        close = decode_payload(EventKind.WS_CLOSE, event.payload)
        assert isinstance(close, SocketClose) and not close.was_clean
        closes.append((event.object_hex, close.sid, close.code))
    return sorted(closes)


async def test_a_socket_enters_the_index_when_accepted_and_leaves_it_when_closed(
    tmp_path: Path,
) -> None:
    index = SocketIndex(tmp_path / "_sockets.sqlite")
    sockets = host_sockets(index, [])
    storage = StorageCore(tmp_path / "room.sqlite")
    try:
        accept(sockets, storage, "ab", "g1.1")
        accept(sockets, storage, "ab", "g1.2")
        assert index.of_host("ROOM/shard/0") == [
            IndexedSocket("ab", "g1.1", "g1"),
            IndexedSocket("ab", "g1.2", "g1"),
        ]
        assert index.hosts() == ["ROOM/shard/0"]
        view = sockets.object_sockets(storage, "ab")
        await sockets.run_event(
            lambda: object(), view, "ab", SocketClose("g1.1", 1000, "", True), storage.commit
        )
        sockets.push("g1", ClosePush("ab", ["g1.2"], 1000, "bye"))  # the object closed it
        assert index.of_host("ROOM/shard/0") == []
    finally:
        sockets.stop()
        storage.close()


async def test_a_restarted_host_loses_the_sockets_whose_gateway_never_comes_back(
    tmp_path: Path,
) -> None:
    index = SocketIndex(tmp_path / "_sockets.sqlite")
    before = host_sockets(index, [])
    storage = StorageCore(tmp_path / "room.sqlite")
    for sid in ("gone.1", "gone.2", "back.1", "back.2"):
        accept(before, storage, "ab", sid)
    storage.close()
    before.stop()  # the host died: nothing of it remains but the files

    delivered: list[Event] = []
    after = host_sockets(SocketIndex(index.path), delivered)
    try:
        after.start(grace=0.2)
        writer: list[Any] = []
        after.attach_gateway("back", writer.append)
        after.announce_sockets("back", [["ab", "back.1"]])  # back.2 closed while it was away
        assert lost(delivered) == [("ab", "back.2", 1006)]
        await asyncio.sleep(0.4)  # the grace period of "gone" ends
        assert lost(delivered) == [
            ("ab", "back.2", 1006),
            ("ab", "gone.1", 1006),
            ("ab", "gone.2", 1006),
        ]
    finally:
        after.stop()


async def test_a_gateway_that_reconnects_without_sockets_loses_them_at_once() -> None:
    delivered: list[str] = []

    def socket_lost(object_hex: str, sid: str) -> None:
        delivered.append(sid)

    links = links_module.GatewayLinks(socket_lost)
    writer: list[Any] = []
    links.attach("g", writer.append)
    links.holds("g", "ab", "g.1")
    links.holds("g", "cd", "g.2")
    links.detach("g", writer.append)
    links.attach("g", writer.append)  # back within its grace, holding only g.2
    links.announce("g", [["cd", "g.2"]])
    links.stop()
    assert delivered == ["g.1"]


# ---- a real host: the object sees each lost socket once --------------------------------


def rooms_spec(root: Path) -> RuntimeSpec:
    room = BindingSpec("ROOM", "tests.apps.rooms.objects:Room", shards=1)
    return RuntimeSpec("reconcile-tests", REPO_ROOT, str(root), bindings=(room,))


async def upgrade(placement: LocalPlacement, object_hex: str, sid: str) -> None:
    spec = placement.spec
    key = spec.host_for(spec.bindings[0], object_hex)
    fetch = FetchRequest("GET", "/room", b"", [], b"", Upgrade(sid, sid.split(".")[0]))
    event = Event("ROOM", object_hex, None, "test", EventKind.FETCH, fetch.encode())
    reply = FetchReply.decode(await placement.deliver(key, event))
    assert reply.status == 101


@pytest.fixture
def quick_restart_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(links_module, "RESTART_GRACE_S", 0.3)


async def test_each_lost_socket_reaches_its_object_once_across_restarts(
    tmp_path: Path, quick_restart_grace: None
) -> None:
    storage_root = tmp_path / "storage"
    spec = rooms_spec(storage_root)
    first = LocalPlacement(spec)
    room = first.env.ROOM.get_by_name("lobby")
    hex_id = room.id.hex
    try:
        for n in range(3):
            await upgrade(first, hex_id, f"dead-gateway.{n}")
        assert await room.sockets() == 3
    finally:
        await first.close()  # its gateway is gone with it: nobody closed the sockets

    for _ in range(2):  # the second restart finds nothing left to close
        again = LocalPlacement(spec)
        try:
            await again.start()
            stub = again.env.ROOM.get_by_name("lobby")
            closes = await poll(stub.closes, lambda c: len(c) >= 3)
            await asyncio.sleep(0.5)  # past the grace: nothing more arrives
            closes = await stub.closes()
            assert sorted(c[0] for c in closes) == [f"dead-gateway.{n}" for n in range(3)]
            assert {(c[1], c[3]) for c in closes} == {(1006, False)}
            assert await stub.sockets() == 0
        finally:
            await again.close()
    index = SocketIndex(layout.socket_index_file(storage_root, "ROOM"))
    try:
        assert index.of_host("ROOM/shard/0") == []
    finally:
        index.close()
