"""What user code reaches: the documented names of ``ctx``, ``ctx.storage`` and
``ctx.storage.sql``, and nothing of the plumbing under them."""

from __future__ import annotations

from pathlib import Path

import pytest

from raydo.actors import BindingSpec
from raydo.actors._host import Host
from raydo.actors._spec import HostKey

from ._support import Place, make_spec

# README "Storage", "Alarms" and "Objects"; DESIGN.md "Public API".
DOCUMENTED = {
    "storage": [
        "commit",
        "delete",
        "delete_alarm",
        "delete_all",
        "delete_many",
        "get",
        "get_alarm",
        "get_bookmark_for_time",
        "get_current_bookmark",
        "get_many",
        "list",
        "on_next_session_restore_bookmark",
        "put",
        "put_many",
        "set_alarm",
        "sql",
        "sync",
        "transaction",
    ],
    "sql": ["exec"],
    "ctx": [
        "abort",
        "accept_websocket",
        "block_concurrency_while",
        "get_tags",
        "get_websocket_auto_response",
        "get_websockets",
        "id",
        "set_websocket_auto_response",
        "storage",
        "wait_until",
    ],
}


PROBER = BindingSpec("PROBE", "tests.actors.face_objects:Prober")


async def test_the_faces_have_only_their_documented_names(place: Place) -> None:
    placement = place(PROBER)
    names = await placement.env.PROBE.get_by_name("p").public_names()
    assert names == DOCUMENTED


async def test_the_old_back_doors_are_closed_inside_a_real_object(place: Place) -> None:
    placement = place(PROBER)
    stub = placement.env.PROBE.get_by_name("p")
    outcome = await stub.try_back_doors()
    assert outcome and set(outcome.values()) == {"refused"}, outcome
    assert await stub.kept() == 1  # the event that tried them committed its own write


def test_an_app_binding_cannot_host_a_platform_object(tmp_path: Path) -> None:
    pretender = BindingSpec("P", "tests.actors.face_objects:Pretender")
    with pytest.raises(TypeError, match="only raydo's internal bindings"):
        Host(make_spec(tmp_path, pretender), HostKey("P", shard=0), None)
