"""Text models (``[ai.text]``): sent to an OpenAI-compatible endpoint (a fake one the test
serves on 127.0.0.1), answered in Workers AI's shapes, streamed as its server-sent events;
upstream errors, timeouts, a missing key and unknown models are clear errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.bindings.ai import Ai, AiError, AiUpstreamError, TextStream
from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import TestApp, start_app
from tests.fake_openai import API_KEY, FakeOpenAI, fake_openai

LLAMA = "@cf/meta/llama-3.1-8b-instruct"


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with fake_openai() as fake:
        yield fake


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path], upstream: FakeOpenAI) -> Path:
    folder = app_copy("ai_text")
    toml = folder / "raydo.toml"
    toml.write_text(toml.read_text().replace("http://127.0.0.1:9/v1", upstream.url))
    return folder


@pytest.fixture
async def app(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TestApp]:
    monkeypatch.setenv("FAKE_OPENAI_KEY", API_KEY)
    async with start_app(app_dir) as app:
        yield app


def ai(app: TestApp) -> Ai:
    found: Ai = app.env.AI
    return found


def events(raw: bytes) -> list[Any]:
    """The data of each server-sent event, JSON-decoded ([DONE] kept as the string)."""
    out: list[Any] = []
    for block in raw.decode().split("\n\n"):
        if block:
            assert block.startswith("data: "), block
            data = block[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


async def test_a_prompt_answers_workers_ai_shape(app: TestApp, upstream: FakeOpenAI) -> None:
    out = await ai(app).run(LLAMA, {"prompt": "hello there", "max_tokens": 20})
    assert out == {
        "response": "echo: hello there",
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 9},
    }
    sent = upstream.requests[-1]
    assert sent["model"] == "llama" and sent["max_tokens"] == 20 and sent["stream"] is False
    assert sent["messages"] == [{"role": "user", "content": "hello there"}]
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    out = await ai(app).run(LLAMA, {"messages": messages, "temperature": 0.2})
    assert out["response"] == "echo: hi"
    assert upstream.requests[-1]["messages"] == messages
    assert upstream.requests[-1]["temperature"] == 0.2
    assert upstream.requests[-1]["max_tokens"] == 256  # Workers AI's default


async def test_a_stream_is_workers_ai_server_sent_events(app: TestApp) -> None:
    stream = await ai(app).run(LLAMA, {"prompt": "one two three", "stream": True})
    assert isinstance(stream, TextStream)
    raw = b"".join([chunk async for chunk in stream])
    got = events(raw)
    assert got[-1] == "[DONE]"
    assert got[-2] == {
        "response": "",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 9},
    }
    assert "".join(e["response"] for e in got[:-1]) == "echo: one two three"
    assert all(set(e) == {"response"} for e in got[:-2]) and len(got) == 6


async def test_a_handler_returns_the_stream(app: TestApp) -> None:
    async with (
        httpx.AsyncClient(base_url=app.url) as client,
        client.stream("GET", "/ask", params={"q": "streamed answer"}) as reply,
    ):
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        raw = b"".join([chunk async for chunk in reply.aiter_bytes()])
    got = events(raw)
    assert "".join(e["response"] for e in got[:-1]) == "echo: streamed answer"
    assert got[-1] == "[DONE]"


async def test_upstream_failures_are_clear_errors(app: TestApp) -> None:
    run = ai(app).run
    with pytest.raises(AiUpstreamError, match=r"the upstream answered 500: .*fell over"):
        await run("@cf/test/broken", {"prompt": "x"})
    with pytest.raises(AiUpstreamError, match="the upstream answered 500"):
        await run("@cf/test/broken", {"prompt": "x", "stream": True})
    with pytest.raises(AiUpstreamError, match=r"did not answer within 2 s \(\[ai.text\] timeout"):
        await run("@cf/test/slow", {"prompt": "x"})
    with pytest.raises(AiUpstreamError, match="did not answer within 2 s"):
        await run("@cf/test/slow", {"prompt": "x", "stream": True})
    # A stream the upstream breaks off ends with an error, after what it had sent.
    stream = await run("@cf/test/cut", {"prompt": "a b c", "stream": True})
    seen: list[bytes] = []
    with pytest.raises(AiUpstreamError, match="broke off the stream"):
        async for chunk in stream:
            seen.append(chunk)
    assert events(b"".join(seen)) == [{"response": "echo:"}]


async def test_inputs_and_unknown_models_are_clear_errors(app: TestApp) -> None:
    run = ai(app).run
    with pytest.raises(AiError, match="exactly one of 'prompt'"):
        await run(LLAMA, {})
    with pytest.raises(AiError, match="exactly one of 'prompt'"):
        await run(LLAMA, {"prompt": "a", "messages": []})
    with pytest.raises(AiError, match=r"unknown inputs \['text'\]"):
        await run(LLAMA, {"text": "a"})
    with pytest.raises(AiError, match=r"messages\[0\] needs a role"):
        await run(LLAMA, {"messages": [{"role": "wizard", "content": "a"}]})
    with pytest.raises(AiError, match="'max_tokens' must be an integer"):
        await run(LLAMA, {"prompt": "a", "max_tokens": "many"})
    with pytest.raises(AiError, match="'stream' must be true or false"):
        await run(LLAMA, {"prompt": "a", "stream": "yes"})
    with pytest.raises(AiError, match=r"unknown model '@cf/meta/llama-2-7b'.*@cf/test/broken"):
        await run("@cf/meta/llama-2-7b", {"prompt": "a"})


async def test_a_missing_key_or_endpoint_is_a_clear_error(
    app: TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_OPENAI_KEY")
    with pytest.raises(AiError, match="api_key_env names FAKE_OPENAI_KEY, which is not set"):
        await ai(app).run(LLAMA, {"prompt": "a"})


async def test_an_unreachable_endpoint_is_a_clear_error(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = app_dir / "raydo.toml"
    text = toml.read_text()
    start = text.index('base_url = "') + len('base_url = "')
    end = text.index('"', start)
    listener_free = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    toml.write_text(text[:start] + listener_free + text[end:])
    monkeypatch.setenv("FAKE_OPENAI_KEY", API_KEY)
    async with start_app(app_dir) as app:
        with pytest.raises(AiUpstreamError, match="cannot reach the upstream"):
            await ai(app).run(LLAMA, {"prompt": "a"})


def test_config_checks_the_text_table(tmp_path: Path) -> None:
    def config(body: str) -> Path:
        (tmp_path / "raydo.toml").write_text(
            f'name = "x"\nmain = "app:app"\n[ai]\nbinding = "AI"\n{body}'
        )
        return tmp_path

    with pytest.raises(ConfigError, match=r"ai\.text\.base_url: missing required key"):
        load_config(config("[ai.text]\n"))
    with pytest.raises(ConfigError, match=r"ai\.text\.base_url: expected an http"):
        load_config(config('[ai.text]\nbase_url = "ftp://x"\n'))
    with pytest.raises(ConfigError, match=r"ai\.text\.models\.m: expected the upstream"):
        load_config(config('[ai.text]\nbase_url = "http://x"\n[ai.text.models]\nm = 1\n'))
    with pytest.raises(ConfigError, match=r"ai\.text\.api_key_env"):
        load_config(config('[ai.text]\nbase_url = "http://x"\napi_key_env = "not a name"\n'))
