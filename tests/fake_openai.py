"""A small OpenAI-compatible server for the model binding's text models, on 127.0.0.1.

``POST /v1/chat/completions`` answers ``echo: <last message's content>`` (streamed word by
word as OpenAI's chunks, usage in a last chunk, then ``[DONE]``). It wants ``Authorization:
Bearer test-key`` (unless made with ``api_key=None``). Upstream model names steer failures:
``broken`` answers 500, ``slow`` waits longer than any test's timeout before answering,
``cut`` streams one piece then breaks off. Each request's JSON body is kept in
:attr:`FakeOpenAI.requests`.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

API_KEY = "test-key"


@dataclass
class FakeOpenAI:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_key: str | None = API_KEY
    """The bearer token it wants; None: any request is let in."""

    async def completions(self, request: Request) -> Response:
        wanted = self.api_key
        if wanted is not None and request.headers.get("authorization") != f"Bearer {wanted}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        body = await request.json()
        self.requests.append(body)
        model = body["model"]
        if model == "broken":
            return JSONResponse({"error": {"message": "the model fell over"}}, status_code=500)
        if model == "slow":
            await asyncio.sleep(30)
        answer = "echo: " + body["messages"][-1]["content"]
        usage = {"prompt_tokens": 3, "completion_tokens": len(answer.split()), "total_tokens": 9}
        if not body.get("stream"):
            return JSONResponse(
                {
                    "object": "chat.completion",
                    "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
                    "usage": usage,
                }
            )

        async def chunks() -> AsyncIterator[bytes]:
            words = answer.split(" ")
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                delta = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                yield b"data: " + json.dumps(delta).encode() + b"\n\n"
                if model == "cut":
                    raise RuntimeError("the upstream broke off")
            yield b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")


@asynccontextmanager
async def fake_openai(api_key: str | None = API_KEY) -> AsyncIterator[FakeOpenAI]:
    """Serve a :class:`FakeOpenAI` for the block; its ``url`` ends in ``/v1``."""
    fake = FakeOpenAI(api_key=api_key)
    app = Starlette(routes=[Route("/v1/chat/completions", fake.completions, methods=["POST"])])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
    serving = asyncio.ensure_future(server.serve(sockets=[listener]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        fake.url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        yield fake
    finally:
        server.should_exit = True
        server.force_exit = True
        await serving
        listener.close()
