"""Text generation: ``@cf/...`` text models sent to an OpenAI-compatible endpoint
(``[ai.text]``: a vLLM or Ray Serve LLM deployment, or a provider), answered in Workers AI's
shapes.

``run(model, {"prompt": ...})`` or ``{"messages": [...]}`` returns ``{"response": str,
"usage": {...}}``; with ``"stream": True`` it returns a :class:`TextStream`, an async
iterator of server-sent-event bytes in Workers AI's framing (``data: {"response": "..."}``
per piece, a last event with ``usage``, then ``data: [DONE]``) that a handler returns as
``StreamingResponse(stream, media_type="text/event-stream")``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._types import AiError

#: The inputs a text model takes (Workers AI's names), and the OpenAI name each becomes.
_PASSED = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
_TEXT_KEYS = ("prompt", "messages", "stream", *_PASSED)
#: Workers AI's default for ``max_tokens``.
DEFAULT_MAX_TOKENS = 256
_ROLES = ("system", "user", "assistant", "tool")
_ERROR_BODY_CHARS = 300


class AiUpstreamError(AiError):
    """The text model's endpoint failed: unreachable, too slow, or an error status."""


@dataclass(frozen=True, slots=True)
class TextEndpoint:
    """``[ai.text]``: where text models go, and which upstream model each name is."""

    base_url: str
    models: dict[str, str]
    api_key_env: str | None = None
    timeout_seconds: float = 60.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> TextEndpoint | None:
        if not options:
            return None
        return cls(
            base_url=str(options["base_url"]).rstrip("/"),
            models={str(k): str(v) for k, v in dict(options.get("models", {})).items()},
            api_key_env=options.get("api_key_env"),
            timeout_seconds=float(options.get("timeout_seconds", 60.0)),
        )

    def headers(self) -> dict[str, str]:
        if self.api_key_env is None:
            return {}
        key = os.environ.get(self.api_key_env)
        if not key:
            raise AiError(
                f"[ai.text] api_key_env names {self.api_key_env}, which is not set in this"
                " process's environment"
            )
        return {"authorization": f"Bearer {key}"}


def chat_request(model: str, upstream: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI chat completion request for a Workers AI text call; AiError when the inputs
    are malformed."""
    unknown = sorted(set(inputs) - set(_TEXT_KEYS))
    if unknown:
        raise AiError(
            f"{model}: unknown inputs {unknown}; a text model takes {', '.join(_TEXT_KEYS)}"
        )
    if ("prompt" in inputs) == ("messages" in inputs):
        raise AiError(f"{model}: give exactly one of 'prompt' (a string) and 'messages' (a list)")
    if "prompt" in inputs:
        prompt = inputs["prompt"]
        if not isinstance(prompt, str) or not prompt:
            raise AiError(f"{model}: 'prompt' must be a non-empty string")
        messages: list[dict[str, str]] = [{"role": "user", "content": prompt}]
    else:
        messages = _messages(model, inputs["messages"])
    stream = inputs.get("stream", False)
    if not isinstance(stream, bool):
        raise AiError(f"{model}: 'stream' must be true or false, got {stream!r}")
    body: dict[str, Any] = {
        "model": upstream,
        "messages": messages,
        "stream": stream,
        "max_tokens": DEFAULT_MAX_TOKENS,
    }
    for ours, theirs in _PASSED.items():
        if ours in inputs:
            value = inputs[ours]
            integer = ours in ("max_tokens", "seed")
            kinds: tuple[type, ...] = (int,) if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds):
                what = "an integer" if integer else "a number"
                raise AiError(f"{model}: {ours!r} must be {what}, got {value!r}")
            body[theirs] = value
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _messages(model: str, value: object) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise AiError(f"{model}: 'messages' must be a non-empty list of {{role, content}}")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping) or set(message) - {"role", "content"}:
            raise AiError(f"{model}: messages[{i}] must be {{'role': ..., 'content': ...}}")
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES or not isinstance(content, str):
            raise AiError(
                f"{model}: messages[{i}] needs a role ({', '.join(_ROLES)}) and a string content"
            )
        messages.append({"role": str(role), "content": content})
    return messages


class TextClient:
    """Sends text calls to the endpoint; a new connection per call (the endpoint's cost
    dwarfs it)."""

    def __init__(self, endpoint: TextEndpoint) -> None:
        self.endpoint = endpoint

    @property
    def models(self) -> list[str]:
        return sorted(self.endpoint.models)

    async def run(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any] | TextStream:
        body = chat_request(model, self.endpoint.models[model], inputs)
        if body["stream"]:
            stream = TextStream(self.endpoint, model, body)
            await stream.open()
            return stream
        async with self._client() as client:
            reply = await self._send(client, model, body)
            try:
                answer = reply.json()
                text = answer["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise AiUpstreamError(
                    f"{model}: the upstream's answer is not a chat completion: {exc!r}"
                ) from None
        result: dict[str, Any] = {"response": text}
        if isinstance(answer.get("usage"), dict):
            result["usage"] = _usage(answer["usage"])
        return result

    def _client(self) -> httpx.AsyncClient:
        return client_for(self.endpoint)

    async def _send(self, client: httpx.AsyncClient, model: str, body: dict[str, Any]) -> Any:
        try:
            reply = await client.post("/chat/completions", json=body)
        except httpx.TimeoutException:
            raise _timeout(self.endpoint, model) from None
        except httpx.HTTPError as exc:
            raise _unreachable(self.endpoint, model, exc) from None
        if reply.status_code != 200:
            raise _status(model, reply.status_code, reply.text)
        return reply


def client_for(endpoint: TextEndpoint) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=endpoint.base_url,
        headers=endpoint.headers(),
        timeout=httpx.Timeout(endpoint.timeout_seconds),
    )


class TextStream:
    """A streamed answer: iterate it for Workers AI's server-sent events, as bytes. Return
    it from a handler as ``StreamingResponse(stream, media_type="text/event-stream")``; a
    stream is read once. :meth:`aclose` ends it early (the upstream connection closes)."""

    media_type = "text/event-stream"

    def __init__(self, endpoint: TextEndpoint, model: str, body: dict[str, Any]) -> None:
        self._endpoint = endpoint
        self._model = model
        self._body = body
        self._client: httpx.AsyncClient | None = None
        self._reply: httpx.Response | None = None
        self._events: AsyncIterator[bytes] | None = None

    async def open(self) -> None:
        """Send the request and check the head, so a refused call raises here."""
        self._client = client_for(self._endpoint)
        try:
            request = self._client.build_request("POST", "/chat/completions", json=self._body)
            self._reply = await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            await self.aclose()
            raise _timeout(self._endpoint, self._model) from None
        except httpx.HTTPError as exc:
            await self.aclose()
            raise _unreachable(self._endpoint, self._model, exc) from None
        if self._reply.status_code != 200:
            text = (await self._reply.aread()).decode("utf-8", "replace")
            await self.aclose()
            raise _status(self._model, self._reply.status_code, text)

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._events is None:
            self._events = self._relay()
        return self._events

    async def aclose(self) -> None:
        if self._reply is not None:
            await self._reply.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def _relay(self) -> AsyncIterator[bytes]:
        assert self._reply is not None
        usage: dict[str, int] | None = None
        try:
            async for line in self._reply.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise AiUpstreamError(
                        f"{self._model}: the upstream sent an event that is not JSON: {data[:80]!r}"
                    ) from None
                if isinstance(chunk.get("usage"), dict):
                    usage = _usage(chunk["usage"])
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield _event({"response": piece})
            yield _event({"response": "", "usage": usage or {}})
            yield b"data: [DONE]\n\n"
        except httpx.TimeoutException:
            raise _timeout(self._endpoint, self._model) from None
        except httpx.HTTPError as exc:
            raise AiUpstreamError(
                f"{self._model}: the upstream broke off the stream: {exc!r}"
            ) from None
        finally:
            await self.aclose()


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    names = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {n: int(usage[n]) for n in names if isinstance(usage.get(n), int)}


def _timeout(endpoint: TextEndpoint, model: str) -> AiUpstreamError:
    return AiUpstreamError(
        f"{model}: the upstream {endpoint.base_url} did not answer within"
        f" {endpoint.timeout_seconds:g} s ([ai.text] timeout_seconds)"
    )


def _unreachable(endpoint: TextEndpoint, model: str, exc: Exception) -> AiUpstreamError:
    return AiUpstreamError(f"{model}: cannot reach the upstream {endpoint.base_url}: {exc!r}")


def _status(model: str, status: int, text: str) -> AiUpstreamError:
    return AiUpstreamError(f"{model}: the upstream answered {status}: {text[:_ERROR_BODY_CHARS]}")
