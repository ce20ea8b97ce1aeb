"""Headless Chromium driven over the DevTools protocol, with the ``websockets`` client.

Just enough for end-to-end tests: open pages, type, press Enter, read the page.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import websockets

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session

    async def evaluate(self, expression: str) -> Any:
        reply = await self._browser.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            self._session,
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page error: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"never true: {expression}")
            await asyncio.sleep(0.05)

    async def type_into(self, selector: str, text: str) -> None:
        """Focus an input and type ``text`` as keyboard input, then press Enter."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self._browser.call("Input.insertText", {"text": text}, self._session)
        for kind in ("keyDown", "keyUp"):
            await self._browser.call(
                "Input.dispatchKeyEvent",
                {
                    "type": kind,
                    "key": "Enter",
                    "code": "Enter",
                    "windowsVirtualKeyCode": 13,
                    "text": "\r" if kind == "keyDown" else "",
                },
                self._session,
            )


class Browser:
    """One headless Chromium process and its DevTools connection."""

    def __init__(self, executable: str) -> None:
        self._executable = executable
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._profile = Path(tempfile.mkdtemp(prefix="raydo-chromium-"))

    async def __aenter__(self) -> Browser:
        self._proc = await asyncio.create_subprocess_exec(
            self._executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self._profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._proc.stderr is not None
        url = None
        while url is None:
            line = await asyncio.wait_for(self._proc.stderr.readline(), 30)
            if not line:
                raise RuntimeError("chromium exited before its DevTools endpoint was ready")
            found = re.search(rb"DevTools listening on (ws://\S+)", line)
            url = found.group(1).decode() if found else None
        self._drain = asyncio.ensure_future(self._proc.stderr.read())
        self._ws = await websockets.connect(url, max_size=None)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        await self._ws.close()
        self._proc.kill()
        await self._proc.wait()
        self._drain.cancel()
        shutil.rmtree(self._profile, ignore_errors=True)

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            future = self._waiting.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(RuntimeError(str(message["error"])))
                else:
                    future.set_result(message.get("result", {}))

    async def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        await self._ws.send(json.dumps(message))
        return await asyncio.wait_for(future, 30)

    async def open(self, url: str) -> Page:
        target = await self.call("Target.createTarget", {"url": url})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        # A new target is briefly a complete about:blank: wait for the page asked for.
        await page.wait_for(
            f"location.href.startsWith({json.dumps(url)}) && document.readyState === 'complete'"
        )
        return page
