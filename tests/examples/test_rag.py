"""The rag example end to end, in process: documents uploaded over HTTP, chunked, embedded
by env.AI (a tiny model built by the test in the example's models folder), stored in
env.VECTORIZE; /search finds a chunk and filters by document; /ask streams the fake
upstream's answer, with the chunks it was given; the page is served."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.gateway.testing import TestApp, start_app
from tests.ai_models import WORDS, build_model
from tests.fake_openai import FakeOpenAI, fake_openai


def chunks(text: str) -> list[str]:
    """The example's chunks (60 words, each 45 after the one before), said again here."""
    words = text.split()
    return [" ".join(words[i : i + 60]) for i in range(0, max(len(words) - 15, 1), 45)]


def document(seed: int, n: int = 150) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with fake_openai(api_key=None) as fake:
        yield fake


@pytest.fixture
async def app(app_copy: Callable[[str], Path], upstream: FakeOpenAI) -> AsyncIterator[TestApp]:
    folder = app_copy("rag")
    build_model(folder / "models" / "bge-small-en-v1.5", hidden=32)
    toml = folder / "raydo.toml"
    text = toml.read_text()
    text = text.replace('preset = "@cf/baai/bge-small-en-v1.5"', "dimensions = 32")
    text = text.replace("http://127.0.0.1:8000/v1", upstream.url)
    toml.write_text(text)
    async with start_app(folder) as app:
        yield app


async def test_upload_search_filter_and_streamed_ask(app: TestApp, upstream: FakeOpenAI) -> None:
    cats, weather = document(1), document(2)
    async with httpx.AsyncClient(base_url=app.url, timeout=60) as client:
        page = await client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script>" in page.text and "/ask?" in page.text
        for doc, text in (("cats", cats), ("weather", weather)):
            reply = await client.post("/documents", json={"id": doc, "title": doc, "text": text})
            assert reply.status_code == 201, reply.text
            assert len(chunks(text)) == 3
            assert reply.json() == {"id": doc, "chunks": 3}
        # A chunk's own text finds that chunk first, with a cosine score of 1.
        second = chunks(cats)[1]
        found = (await client.get("/search", params={"q": second, "top_k": 3})).json()
        best = found["matches"][0]
        assert (best["id"], best["doc"], best["position"]) == ("cats:1", "cats", 1)
        assert best["score"] == pytest.approx(1.0, abs=1e-3) and best["text"] == second
        # Filtered by document: only that document's chunks, however close the others are.
        only = await client.get("/search", params={"q": second, "doc": "weather", "top_k": 10})
        matches = only.json()["matches"]
        assert matches and {m["doc"] for m in matches} == {"weather"}
        assert len(matches) == len(chunks(weather))
        # /ask: the best chunks of the document go to the text model; its answer streams.
        async with client.stream(
            "GET", "/ask", params={"q": "what sat on the mat", "doc": "cats", "top_k": 2}
        ) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            raw = b"".join([chunk async for chunk in reply.aiter_bytes()])
        blocks = [b[len("data: ") :] for b in raw.decode().split("\n\n") if b]
        assert blocks[-1] == "[DONE]"
        pieces: list[Any] = [json.loads(b) for b in blocks[:-1]]
        assert "".join(p["response"] for p in pieces) == "echo: what sat on the mat"
        assert "usage" in pieces[-1]
        sent = upstream.requests[-1]
        assert sent["stream"] is True and sent["messages"][-1]["content"] == "what sat on the mat"
        system = sent["messages"][0]["content"]
        assert "[cats #" in system and "[weather #" not in system
        # Bad input is a 400 naming the field.
        bad = await client.post("/documents", json={"id": "../x", "text": "a"})
        assert bad.status_code == 400 and "id" in bad.json()["error"]
        assert (await client.post("/documents", content=b"nope")).status_code == 400
        assert (await client.get("/search", params={"q": " "})).status_code == 400
        assert (await client.get("/search", params={"q": "a", "top_k": "x"})).status_code == 400
