"""A socket answers only to its own object: the gateway applies a push to a socket only when it
came from the host that owns the socket and names the socket's own object (issue 12, item 6).
"""

from __future__ import annotations

from typing import Any

from raydo.actors._frames import PushFrame
from raydo.actors._spec import HostKey
from raydo.actors.placement import LocalPlacement
from raydo.gateway.testing import TestApp
from raydo.storage import codec
from tests.websockets.clients import ask, connect


def forge(app: TestApp, key: HostKey, push: list[Any]) -> None:
    """Make ``push`` arrive as if host ``key`` sent it: bytes of a PUSH frame on the gateway's
    link to that host (on Ray), or what that host's writer hands the hub (in process)."""
    placement: Any = app.gateway.placement
    if isinstance(placement, LocalPlacement):
        placement.hub.pushes_from(key)(push)
    else:
        placement._links[key].data_received(codec.packer().pack(PushFrame.pack(push)))


def host_of(app: TestApp, binding: str, object_hex: str) -> HostKey:
    spec = app.gateway.spec
    return spec.host_for(spec.binding(binding), object_hex)


async def test_an_object_cannot_send_to_or_close_another_objects_socket(
    app: TestApp, name: str
) -> None:
    hub = app.gateway.placement.hub  # type: ignore[union-attr]
    async with connect(app.websocket_url(f"/lab/victim-{name}")) as victim:
        sid = await ask(victim, "sid")
        assert isinstance(sid, str)
        refused = hub.refused_pushes
        # The thief's own records take the id (its host believes it), so it sends and closes.
        thief = app.env.LAB.get_by_name(f"thief-{name}")
        assert await thief.hijack(sid, "stolen") == 1
        # Neither reached the client: its next message is its own object's answer.
        assert await ask(victim, "echo still mine") == "still mine"
        assert hub.refused_pushes == refused + 2  # the send and the close


async def test_a_forged_push_on_a_host_link_reaches_no_client(app: TestApp, name: str) -> None:
    hub = app.gateway.placement.hub  # type: ignore[union-attr]
    victim_hex = app.env.LAB.id_from_name(f"victim-{name}").hex
    other_hex = app.env.ROOM.id_from_name(f"other-{name}").hex
    assert await app.env.ROOM.get_by_name(f"other-{name}").send_all("nobody") == 0  # a link
    async with connect(app.websocket_url(f"/lab/victim-{name}")) as victim:
        sid = await ask(victim, "sid")
        refused = hub.refused_pushes
        # From another host, naming the socket's own object; from its own host, naming
        # another object; and a close from another host.
        forge(app, host_of(app, "ROOM", other_hex), ["send", victim_hex, [sid], "forged"])
        forge(app, host_of(app, "LAB", victim_hex), ["send", other_hex, [sid], "forged"])
        forge(app, host_of(app, "ROOM", other_hex), ["close", victim_hex, [sid], 4000, "x"])
        assert await ask(victim, "echo untouched") == "untouched"
        assert hub.refused_pushes == refused + 3
        # The same push from the owning host, naming the owner, is a real one.
        forge(app, host_of(app, "LAB", victim_hex), ["send", victim_hex, [sid], "genuine"])
        assert await ask(victim, "echo after") == "genuine"
