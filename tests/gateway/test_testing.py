"""The harness users test their apps with, exactly as the README shows it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from raydo.gateway.testing import start_app
from tests.cluster import REPO, copy_app


def test_the_readme_example(tmp_path: Path) -> None:
    app_dir = copy_app(REPO / "examples" / "counter", tmp_path)
    readme = (REPO / "README.md").read_text()
    example = readme.split("An example test (pytest, no plugins needed):", 1)[1]
    code = (
        example.split("```python", 1)[1]
        .split("```", 1)[0]
        .replace('"examples/counter"', repr(str(app_dir)))
    )
    namespace: dict[str, object] = {}
    exec(compile(code, "README example", "exec"), namespace)
    namespace["test_counter_counts"]()  # type: ignore[operator]


async def test_hooks_reach_objects_in_their_turn(tmp_path: Path) -> None:
    app_dir = copy_app(REPO / "examples" / "counter", tmp_path)

    async with start_app(app_dir) as app:
        assert app.url.startswith("http://127.0.0.1:")
        assert app.websocket_url("/x").startswith("ws://127.0.0.1:")
        assert await app.list_ids("COUNTER") == []
        await asyncio.gather(*(app.http.post("/counter/h/increment") for _ in range(5)))
        assert await app.sql("COUNTER", "h", "SELECT 40 + 2 AS answer") == [{"answer": 42}]
        ids = await app.list_ids("COUNTER")
        assert ids == [str(app.env.COUNTER.id_from_name("h"))]
        assert re.fullmatch(r"[0-9a-f]{64}", ids[0])
        by_id = app.env.COUNTER.id_from_string(ids[0])
        assert await app.evict("COUNTER", by_id) is True
        assert await app.run_alarm("COUNTER", "h") is False  # no alarm set
        assert (await app.http.get("/counter/h")).json()["value"] == 5


async def test_the_websocket_client_is_bound_to_the_app(tmp_path: Path) -> None:
    app_dir = copy_app(REPO / "examples" / "chat", tmp_path)

    async with start_app(app_dir) as app, app.websocket("/room/r/ws?name=ann") as ws:
        first = await asyncio.wait_for(ws.recv(), 10)
        assert '"type": "history"' in first


async def test_a_limit_breached_inside_an_object_is_a_413_naming_it(tmp_path: Path) -> None:
    app_dir = copy_app(REPO / "examples" / "counter", tmp_path)
    toml = app_dir / "raydo.toml"
    toml.write_text(toml.read_text() + "\n[limits]\nvalue_bytes = 4\n")

    async with start_app(app_dir) as app:
        # The counter's value (an int) encodes in 1-5 bytes: 5 bytes once it passes 2**16.
        await app.sql("COUNTER", "big", "SELECT 1")  # exists, nothing stored yet
        reply = await app.http.post("/counter/big/fetch?by=100000")
        assert reply.status_code == 413
        assert reply.json()["limit"] == "value_bytes"
        assert (await app.http.get("/counter/big")).json()["value"] == 0
