"""The host's collaborator for WebSockets, on its own: links, pushes, upgrades, events."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from raydo.actors._http import fetch_request
from raydo.actors._payloads import (
    ClosePush,
    FetchReply,
    FetchRequest,
    SendPush,
    SocketClose,
    SocketMessage,
    Upgrade,
    decode_payload,
)
from raydo.actors.types import Event, EventKind
from raydo.actors.websockets import HostSockets, ObjectSockets, accept_response
from raydo.actors.websockets import _links as links_module
from raydo.storage import StorageCore
from raydo.storage.limits import DEFAULT_LIMITS


def host_sockets(delivered: list[Event]) -> HostSockets:
    def deliver_local(event: Event) -> asyncio.Future[Any]:
        delivered.append(event)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    return HostSockets("ROOM", DEFAULT_LIMITS, deliver_local, lambda: "own-chain")


@pytest.mark.anyio
async def test_pushes_are_counted_and_a_lost_gateways_sockets_close_with_1006(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(links_module, "GATEWAY_GRACE_S", 0.05)
    delivered: list[Event] = []
    sockets = host_sockets(delivered)
    written: list[list[Any]] = []
    writer = written.append  # one bound method: detach must see the writer attach saw
    sockets.attach_gateway("g", writer)
    sockets.announce_sockets("g", [["ab", "g.1"], ["ab", "g.2"]])
    sockets.push("g", SendPush("ab", ["g.1", "g.2"], "hi"))
    sockets.push("g", ClosePush("ab", ["g.2"], 1000, ""))
    assert written == [["send", "ab", ["g.1", "g.2"], "hi"], ["close", "ab", ["g.2"], 1000, ""]]
    assert sockets.sends == 2
    sockets.detach_gateway("g", writer)
    await asyncio.sleep(0.2)
    sockets.stop()
    assert [(e.kind, e.object_hex, e.chain) for e in delivered] == [
        (EventKind.WS_CLOSE, "ab", "own-chain")
    ]
    close = decode_payload(EventKind.WS_CLOSE, delivered[0].payload)
    assert close == SocketClose("g.1", 1006, "the gateway holding this WebSocket went away", False)


class Room:
    """What a socket event's handlers see."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        self.seen.append(("message", ws.sid, message))

    async def web_socket_close(self, ws: Any, code: int, reason: str, clean: bool) -> None:
        self.seen.append(("close", ws.sid, code, ws.tags))


@pytest.mark.anyio
async def test_an_upgrade_is_accepted_then_its_events_run_and_its_close_forgets_it(
    tmp_path: Path,
) -> None:
    sockets = host_sockets([])
    storage = StorageCore(tmp_path / "room.sqlite")
    try:
        view: ObjectSockets = sockets.object_sockets(storage, "ab")
        fetch = FetchRequest("GET", "/ws", b"", [], b"", Upgrade("g.1", "g"))
        request: Request = fetch_request(fetch)
        sockets.prepare_upgrade(request, fetch)
        accept_response(request, view, ["blue"])
        reply = sockets.answer_upgrade(view, "ab", fetch, FetchReply(101, [], b""))
        assert reply.status == 101 and reply.auto_response is None
        with pytest.raises(TypeError, match=r"without ctx\.accept_websocket"):
            other = fetch._replace(upgrade=Upgrade("g.2", "g"))
            sockets.answer_upgrade(view, "ab", other, FetchReply(101, [], b""))

        room = Room()
        commits: list[None] = []
        await sockets.run_event(
            lambda: room, view, "ab", SocketMessage("g.1", "hi"), lambda: commits.append(None)
        )
        await sockets.run_event(
            lambda: room,
            view,
            "ab",
            SocketClose("g.1", 1000, "", True),
            lambda: commits.append(None),
        )
        await sockets.run_event(  # closed already: nothing runs
            lambda: room, view, "ab", SocketMessage("g.1", "late"), lambda: None
        )
        assert room.seen == [("message", "g.1", "hi"), ("close", "g.1", 1000, ["blue"])]
        assert commits == [None] and view.record("g.1") is None
    finally:
        storage.close()
