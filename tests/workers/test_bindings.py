"""D1, KV and R2 reached from a Python Worker with the platform's names and options (a
trailing options mapping, as JavaScript passes it, or keywords), configured only by
``wrangler.jsonc``."""

from __future__ import annotations

from pathlib import Path

import pytest

from raydo.gateway.testing import start_app
from workers._env import worker_env

APP = Path(__file__).parent / "apps" / "bindings_worker"


async def test_d1_rows_read_as_attributes_and_items_with_meta_batch_and_raw() -> None:
    async with start_app(APP) as app:
        quote = await app.http.get("/d1")
        assert quote.json() == {"quote": "Simple is better than complex.", "author": "Tim Peters"}
        added = await app.http.post("/d1/add", json={"quote": "Flat is better.", "author": "TP"})
        assert added.json() == {
            "last_row_id": 2,
            "changes": 1,
            "n": 2,
            "batch": [2, 2],
            "raw": [["n"], [2]],
        }


async def test_kv_and_r2_take_the_platforms_options() -> None:
    async with start_app(APP) as app:
        kv = await app.http.get("/kv")
        assert kv.json() == {
            "json": {"hello": "kv"},
            "text": "text",
            "keys": ["greeting"],
            "missing": None,
            "buffer": list(b"text"),  # "arrayBuffer" is raydo's "bytes"
            "keyword": list(b"text"),
            "with_metadata": {"hello": "kv"},
            "cache_status": "HIT",  # the platform's name for raydo's cache_status (read before)
            "metadata_item": None,
        }
        r2 = await app.http.get("/r2")
        assert r2.json() == {"text": "stored in r2", "size": 12, "keys": ["notes/a.txt"]}


async def test_an_r2_object_reads_with_the_platforms_names() -> None:
    async with start_app(APP) as app:
        page = await app.http.get("/r2/meta")
        assert (page.status_code, page.text) == (200, "<p>hi</p>")
        assert page.headers["content-type"] == "text/html"
        assert page.headers["etag"].startswith('"')
        assert page.headers["x-meta"] == "{'contentType': 'text/html'}"
        assert (page.headers["x-used"], page.headers["x-listed"]) == ("True", "[True]")
        assert page.headers["x-prefixes"] == "[]"


async def test_an_unknown_binding_is_an_attribute_error_naming_those_there() -> None:
    async with start_app(APP) as app:
        env = worker_env(app.env)
        with pytest.raises(AttributeError) as info:
            env.AI.run("@cf/meta/llama", {"prompt": "hi"})
        assert "AI" in str(info.value) and "DB" in str(info.value)
        assert "AI" not in env and "DB" in env
