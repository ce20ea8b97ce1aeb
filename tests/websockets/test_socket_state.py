"""A client socket's life is a state with checked transitions, read on every transition."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from raydo.actors._payloads import SendPush, SocketClose, SocketMessage
from raydo.actors._spec import HostKey
from raydo.actors.websockets import DetachedSocket, SocketHub, SocketState, SocketStateError
from raydo.storage.limits import DEFAULT_LIMITS

S = SocketState


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.CONNECTING, S.OPEN),
        (S.CONNECTING, S.CLOSED),
        (S.OPEN, S.CLOSING),
        (S.OPEN, S.CLOSED),
        (S.CLOSING, S.CLOSED),
    ],
)
def test_legal_transitions(start: SocketState, to: SocketState) -> None:
    assert start.check(to) is to


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.CONNECTING, S.CLOSING),
        (S.OPEN, S.OPEN),
        (S.OPEN, S.CONNECTING),
        (S.CLOSING, S.OPEN),
        (S.CLOSING, S.CLOSING),
        *[(S.CLOSED, state) for state in SocketState],
    ],
)
def test_illegal_transitions_raise(start: SocketState, to: SocketState) -> None:
    with pytest.raises(SocketStateError, match=f"a {start.value} socket cannot become"):
        start.check(to)


class FakeConnection:
    """What a server offers once it detached a socket, recording what raydo does."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.writable_now = True
        self.tasks: list[asyncio.Task[Any]] = []

    def send_message(self, data: str | bytes) -> None:
        self.sent.append(data)

    def close_socket(self, code: int, reason: str) -> None:
        self.sent.append(("close", code, reason))

    def abort(self) -> None:
        self.sent.append("abort")

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def track(self, task: asyncio.Task[Any]) -> None:
        self.tasks.append(task)

    def release(self) -> None: ...


def state_of(sock: DetachedSocket) -> SocketState:
    """The socket's state now (a call, so the checker does not narrow it across steps)."""
    return sock.state


def detached_socket(events: list[Any], ended: list[str]) -> tuple[DetachedSocket, FakeConnection]:
    async def send_event(event: SocketMessage | SocketClose) -> None:
        events.append(event)

    sock = DetachedSocket(
        "g.1", HostKey("ROOM", shard=0), "ab", DEFAULT_LIMITS, None, send_event, ended.append
    )
    connection = FakeConnection()
    assert sock.detach_from(lambda sink: connection)
    return sock, connection


@pytest.mark.anyio
async def test_a_socket_goes_open_closing_closed_and_reports_its_end_once() -> None:
    events: list[Any] = []
    ended: list[str] = []
    sock, connection = detached_socket(events, ended)
    assert state_of(sock) is S.CONNECTING
    sock.opened()
    assert state_of(sock) is S.OPEN
    assert sock.send("one")
    sock.close(4000, "bye")  # the object closed it
    assert state_of(sock) is S.CLOSING
    assert sock.send("after the close")  # taken, and dropped
    sock.close(4001, "again")  # a second close changes nothing
    assert connection.sent == ["one", ("close", 4000, "bye")]
    sock.closed(4000, "bye", True)
    await asyncio.gather(*connection.tasks)
    assert state_of(sock) is S.CLOSED and ended == ["g.1"]
    assert events == []  # closed by the object: it is not told again
    with pytest.raises(SocketStateError):
        sock.opened()


@pytest.mark.anyio
async def test_messages_reach_the_object_only_while_open() -> None:
    events: list[Any] = []
    sock, connection = detached_socket(events, [])
    sock.opened()
    sock.message("hello")
    sock.closed(1000, "", True)
    await asyncio.gather(*connection.tasks)
    assert events == [SocketMessage("g.1", "hello"), SocketClose("g.1", 1000, "", True)]
    sock.message("too late")
    assert len(events) == 2


@pytest.mark.anyio
async def test_a_client_left_behind_is_cut_off_and_reported_as_dropped() -> None:
    events: list[Any] = []
    sock, connection = detached_socket(events, [])
    sock.opened()
    connection.writable_now = False
    while sock.send("x"):
        pass
    sock.cut_off()
    assert state_of(sock) is S.CLOSING and sock.dropped
    assert connection.sent == [("close", 1008, "client too slow: outgoing queue full")]
    sock.closed(1000, "", True)
    await asyncio.gather(*connection.tasks)
    assert events == [SocketClose("g.1", 1008, "client too slow: outgoing queue full", False)]


@pytest.mark.anyio
async def test_the_hub_holds_pushes_for_a_socket_until_it_is_open() -> None:
    hub = SocketHub(DEFAULT_LIMITS)
    host = HostKey("ROOM", shard=0)
    sid = hub.new_sid(host, "ab")
    hub.push(host, ["send", "ab", [sid], "greeting"])
    hub.push(host, ["send", "ab", ["unknown"], "dropped"])
    assert hub._waiting[sid] == [SendPush("ab", [sid], "greeting")]
    assert hub.sockets_on(host) == []
    hub.abandon(sid)
    assert hub.open_by_binding() == {}
