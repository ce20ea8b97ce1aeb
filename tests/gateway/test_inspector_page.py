"""The inspector's page in headless Chromium: it lists the objects the test made, shows one
object's rows, runs a query, refuses a write, and draws the hosts' charts; loaded with the
token under ``serve``'s rules, it works from the cookie ``?token=`` set."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from raydo.gateway.inspector import InspectorSettings
from raydo.gateway.testing import start_app
from tests.browser import Browser, Page, chromium_path

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Debian's chromium is not installed"
)

TOKEN = "a-token-for-the-page-0123456789"


def _text(selector: str) -> str:
    return f"(document.querySelector({json.dumps(selector)}) || {{innerText: ''}}).innerText"


async def _click(page: Page, selector: str) -> None:
    await page.wait_for(f"document.querySelector({json.dumps(selector)}) !== null")
    await page.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


async def _contains(page: Page, selector: str, text: str) -> None:
    await page.wait_for(f"{_text(selector)}.includes({json.dumps(text)})")


async def test_the_page_shows_objects_rows_and_the_console(
    app_copy: Callable[[str], Path],
) -> None:
    executable = chromium_path()
    assert executable is not None
    async with start_app(app_copy("everything"), inspector=InspectorSettings()) as app:
        for text in ("first note", "second note"):
            await app.http.post("/room/alpha", content=text)
        await app.http.put("/room/beta", content="hello")
        await app.http.put("/files?key=report.txt", content="x")
        await app.http.post("/jobs", content="job")
        async with Browser(executable) as browser:
            page = await browser.open(app.url + "/_raydo/inspector")
            await _contains(page, "#app", app.config.name)
            await _click(page, 'nav button[data-binding="ROOM"]')
            await _contains(page, "#objects", "alpha")
            await _contains(page, "#objects", "beta")

            # Open alpha from the list, then its table: its rows show.
            await page.evaluate(
                "[...document.querySelectorAll('#objects tr.pick')]"
                ".find((tr) => tr.innerText.includes('alpha')).click()"
            )
            await _contains(page, "#object-name", "alpha")
            await _click(page, '#tables button[data-table="notes"]')
            await _contains(page, "#table-rows", "first note")
            await _contains(page, "#table-rows", "second note")
            await _contains(page, "#kv", "n")

            # The console: a query runs, a write is refused and changes nothing.
            await page.evaluate(
                "document.getElementById('sql').value = 'SELECT count(*) AS notes FROM notes'"
            )
            await _click(page, "#sql-run")
            await _contains(page, "#sql-result", "notes")
            assert "2" in await page.evaluate(_text("#sql-result tbody"))
            await page.evaluate("document.getElementById('sql').value = 'DELETE FROM notes'")
            await _click(page, "#sql-run")
            await _contains(page, "#sql-error", "read-only")
            assert await page.evaluate(_text("#sql-result")) == ""
            assert len(await app.sql("ROOM", "alpha", "SELECT * FROM notes")) == 2

            # Found by name, as typed.
            await _click(page, 'nav button[data-binding="ROOM"]')
            await page.type_into("#find", "beta")
            await _contains(page, "#object-name", "beta")

            await _click(page, 'nav button[data-view="queues"]')
            await _contains(page, "#queues", "jobs")
            await _click(page, 'nav button[data-bucket="FILES"]')
            await _contains(page, "#keys", "report.txt")

            # The charts: points drawn from two polls and more, one line per host.
            await _click(page, 'nav button[data-view="charts"]')
            await page.wait_for(
                "Number(document.getElementById('chart-rate').dataset.points) >= 1"
                " && Number(document.getElementById('chart-depth').dataset.points) >= 1",
                timeout=30,
            )
            await _contains(page, "#charts", "ROOM")

            # Nothing came from anywhere but the gateway itself.
            loaded = await page.evaluate(
                "performance.getEntriesByType('resource').map((e) => e.name)"
            )
            assert loaded and all(url.startswith(app.url + "/") for url in loaded), loaded


async def test_with_a_token_the_page_works_from_its_cookie(
    app_copy: Callable[[str], Path],
) -> None:
    executable = chromium_path()
    assert executable is not None
    settings = InspectorSettings(token=TOKEN)
    async with start_app(app_copy("everything"), inspector=settings) as app:
        await app.http.post("/room/alpha", content="note")
        async with Browser(executable) as browser:
            page = await browser.open(app.url + "/_raydo/inspector")
            assert "token" in await page.evaluate("document.body.innerText")  # the 401
            await page.evaluate(f"location.href = '/_raydo/inspector?token={TOKEN}'")
            await page.wait_for("location.search === '' && document.readyState === 'complete'")
            await _click(page, 'nav button[data-binding="ROOM"]')
            await _contains(page, "#objects", "alpha")
            assert await page.evaluate("document.cookie") == ""  # HttpOnly: not for scripts
