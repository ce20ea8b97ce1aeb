"""Where embedding models run: the :class:`EmbeddingRunner` protocol ``env.AI`` calls, and
:class:`LocalRunner`, which runs them in this process, each forward pass in a worker thread
so the event loop is not blocked."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from ._model import EmbeddingModel
from ._types import Pooling


class EmbeddingRunner(Protocol):
    """Embeds texts with a configured model; the texts are already checked."""

    async def embed(self, model: str, texts: list[str], pooling: Pooling) -> list[list[float]]:
        """One vector (length 1) per text, in order."""
        ...


class ModelCache:
    """Models loaded on first use, once per process, from the folder each name maps to."""

    def __init__(self, folders: Mapping[str, Path]) -> None:
        self.folders = dict(folders)
        self._models: dict[str, EmbeddingModel] = {}
        self._lock = threading.Lock()

    def get(self, model: str) -> EmbeddingModel:
        with self._lock:
            found = self._models.get(model)
            if found is None:
                found = self._models[model] = EmbeddingModel(self.folders[model])
            return found


class LocalRunner:
    """Runs the models in this process (``--in-process`` and ``start_app``'s default)."""

    def __init__(self, folders: Mapping[str, Path]) -> None:
        self.cache = ModelCache(folders)

    async def embed(self, model: str, texts: list[str], pooling: Pooling) -> list[list[float]]:
        def run() -> list[list[float]]:
            vectors: list[list[float]] = self.cache.get(model).embed(texts, pooling).tolist()
            return vectors

        return await asyncio.to_thread(run)
