"""``env.AI``: Workers AI's ``run(model, inputs)`` over the configured models."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._inputs import check_inputs, embedding_inputs
from ._runner import EmbeddingRunner
from ._text import TextClient
from ._types import AiError


class Ai:
    """The model binding. ``await env.AI.run(model, inputs)`` runs ``model`` on ``inputs``
    and returns Workers AI's shape for it.

    Embedding models (``@cf/baai/bge-small-en-v1.5`` ...): ``inputs`` is ``{"text": str |
    list[str], "pooling": "mean" | "cls"}``; the answer is ``{"shape": [n, d], "data":
    [[...], ...], "pooling": ...}``, each vector of length 1. Text models (those ``[ai.text]``
    maps) take ``{"prompt": str}`` or ``{"messages": [...]}`` and go to its endpoint.
    """

    def __init__(
        self,
        embeddings: Mapping[str, Path],
        runner: EmbeddingRunner,
        text: TextClient | None = None,
        *,
        missing: Mapping[str, Path] | None = None,
    ) -> None:
        self._embeddings = dict(embeddings)
        self._runner = runner
        self._text = text
        self._missing = dict(missing or {})

    @property
    def models(self) -> list[str]:
        """The model names this binding serves: embedding models, then text models."""
        return sorted(self._embeddings) + (self._text.models if self._text else [])

    async def stats(self, model: str) -> list[dict[str, Any]]:
        """Each replica's counters for an embedding model: ``calls``, ``texts``,
        ``forward_passes``, ``largest_batch``, ``overloaded``, ``queued_texts``."""
        if model not in self._embeddings:
            raise AiError(f"unknown embedding model {model!r}; serves: {', '.join(self.models)}")
        return await self._runner.stats(model)

    async def aclose(self) -> None:
        """Stop the models this process runs (the gateway calls it at stop)."""
        await self._runner.aclose()

    async def run(
        self, model: str, inputs: Mapping[str, Any], options: Mapping[str, Any] | None = None
    ) -> Any:
        """Run ``model`` on ``inputs``; AiError for an unknown model or malformed inputs.

        An embedding model answers a dict; a text model (``[ai.text]``) ``{"response": str,
        "usage": {...}}``, or with ``"stream": True`` a :class:`TextStream` of server-sent
        events to return as ``StreamingResponse(stream, media_type="text/event-stream")``.
        Upstream failures of a text model raise ``AiUpstreamError`` (an AiError). Workers
        AI's third argument (``options``: AI Gateway settings) is refused when not empty."""
        if not isinstance(model, str):
            raise AiError(f"the model must be a name (a string), got {type(model).__name__}")
        if options:
            names = ", ".join(sorted(map(str, options)))
            raise AiError(
                f"{model}: run's options ({names}) are Cloudflare's AI Gateway's, which raydo"
                " does not offer; call run(model, inputs)"
            )
        checked = check_inputs(model, inputs)
        if model in self._embeddings:
            texts, pooling = embedding_inputs(model, checked)
            data = await self._runner.embed(model, texts, pooling)
            return {"shape": [len(data), len(data[0])], "data": data, "pooling": pooling}
        if self._text is not None and model in self._text.endpoint.models:
            return await self._text.run(model, checked)
        if model in self._missing:
            raise AiError(
                f"model {model!r} has no folder: put its ONNX export (model.onnx,"
                f" tokenizer.json, config.json) in {self._missing[model]}"
            )
        configured = ", ".join(self.models) or "none"
        raise AiError(f"unknown model {model!r}; this app's [ai] serves: {configured}")
