"""The chat example: over WebSockets directly, and typed into two pages of headless Chromium."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from raydo.gateway.testing import start_app
from tests.browser import Browser, chromium_path
from tests.cluster import Server


async def _next(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if event["type"] == kind:
            return event  # type: ignore[no-any-return]


async def test_names_notices_broadcast_and_history(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("chat")) as app:
        url = app.websocket_url("/room/lobby/ws")
        async with websockets.connect(url + "?name=alice") as alice:
            assert (await _next(alice, "history"))["messages"] == []
            async with websockets.connect(url + "?name=bob") as bob:
                await _next(bob, "history")
                assert (await _next(alice, "join"))["name"] == "bob"
                await alice.send(json.dumps({"text": "hi bob"}))
                said = await _next(bob, "message")
                assert (said["name"], said["text"]) == ("alice", "hi bob")
                await bob.send("not json")
                assert "text" in (await _next(bob, "error"))["error"]
            assert (await _next(alice, "leave"))["name"] == "bob"
        # History is in the room's SQLite: a newcomer (and the HTTP API) sees it.
        async with websockets.connect(url + "?name=carol") as carol:
            history = (await _next(carol, "history"))["messages"]
            assert [(m["name"], m["text"]) for m in history] == [("alice", "hi bob")]
        reply = await app.http.get("/room/lobby/history")
        assert [m["text"] for m in reply.json()] == ["hi bob"]
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url):  # no name
                pass
        assert refused.value.response.status_code == 400
        page = await app.http.get("/")
        assert page.status_code == 200 and "<title>raydo chat</title>" in page.text


JOIN_FORM_SHOWN = "getComputedStyle(document.getElementById('join')).display !== 'none'"
CHAT_SHOWN = "getComputedStyle(document.getElementById('chat')).display !== 'none'"


@pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed")
async def test_a_message_typed_in_one_page_appears_in_the_other(
    app_copy: Callable[[str], Path], gateway: Callable[..., Server]
) -> None:
    server = gateway(app_copy("chat"))  # raydo serve on the session's Ray cluster
    executable = chromium_path()
    assert executable is not None

    async with Browser(executable) as browser:
        alice = await browser.open(server.url + "/")
        bob = await browser.open(server.url + "/")
        assert await alice.evaluate(JOIN_FORM_SHOWN) is True
        assert await alice.evaluate(CHAT_SHOWN) is False
        for page, name in ((alice, "alice"), (bob, "bob")):
            await page.evaluate("document.getElementById('room').value = 'garden'")
            await page.type_into("#name", name)
            await page.wait_for("document.body.dataset.connected === 'yes'")
            # Joined: the join form is gone from the page (not only marked hidden: a display
            # rule of the page's own style once kept it on screen), the chat shows.
            assert await page.evaluate(JOIN_FORM_SHOWN) is False
            assert await page.evaluate(CHAT_SHOWN) is True
        await alice.wait_for("document.getElementById('log').innerText.includes('bob joined')")
        await alice.type_into("#text", "hello from alice")
        await bob.wait_for(
            "document.getElementById('log').innerText.includes('alice: hello from alice')"
        )
        assert "alice: hello from alice" in await alice.evaluate(
            "document.getElementById('log').innerText"
        )
    history = httpx.get(server.url + "/room/garden/history", timeout=30).json()
    assert [(m["name"], m["text"]) for m in history] == [("alice", "hello from alice")]
