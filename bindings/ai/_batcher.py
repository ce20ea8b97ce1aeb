"""Concurrent callers' texts batched into one forward pass, behind a bounded queue.

:class:`ModelServer` is one replica of a model: calls to :meth:`ModelServer.embed` queue
their texts; a single worker task takes the first waiting call, waits up to ``batch_wait_ms``
for more (0 by default: calls that arrive while a forward pass runs gather for the next one
anyway, so an idle replica answers at once), and runs one forward pass (in a
thread, so the loop keeps taking calls) over the texts of every waiting call of the same
pooling, up to ``max_batch_texts``. At most ``max_queue_texts`` texts wait or run at once;
a call past that fails at once with :class:`AiOverloaded`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ._model import EmbeddingModel
from ._types import AiOverloaded, Pooling

#: The name of each replica's worker task.
WORKER_TASK = "raydo-ai-batcher"


@dataclass(frozen=True, slots=True)
class Batching:
    """How a replica batches; each a key of ``[ai]``."""

    max_batch_texts: int = 32
    batch_wait_ms: float = 0.0
    max_queue_texts: int = 1000

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Batching:
        names = [f.name for f in fields(cls)]
        return cls(**{name: options[name] for name in names if name in options})


POOL_KEYS = (
    "replicas",
    "num_cpus",
    "num_gpus",
    "max_batch_texts",
    "batch_wait_ms",
    "max_queue_texts",
)
"""The ``[ai]`` keys a model's own ``[ai.pools."<model>"]`` may set."""


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """How one model's pool runs: its replicas, what each reserves, how each batches. The
    ``[ai]`` table's keys, and over them the model's own ``[ai.pools."<model>"]``."""

    replicas: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    batching: Batching = Batching()

    @classmethod
    def for_model(cls, options: Mapping[str, Any], model: str) -> PoolSettings:
        merged = {**options, **dict(options.get("pools", {})).get(model, {})}
        return cls(
            replicas=int(merged.get("replicas", 1)),
            num_cpus=float(merged.get("num_cpus", 1)),
            num_gpus=float(merged.get("num_gpus", 0)),
            batching=Batching.from_options(merged),
        )


@dataclass(slots=True)
class _Call:
    texts: list[str]
    pooling: Pooling
    done: asyncio.Future[list[list[float]]] = field(repr=False)


class ModelServer:
    """One replica: the model, its queue and its worker. Lives on one event loop."""

    def __init__(self, folder: str | Path, batching: Batching | None = None) -> None:
        self.model = EmbeddingModel(folder)
        self.batching = batching or Batching()
        self._waiting: deque[_Call] = deque()
        self._queued_texts = 0
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self.calls = 0
        self.texts = 0
        self.largest_batch = 0
        self.overloaded = 0

    async def embed(self, texts: list[str], pooling: Pooling) -> list[list[float]]:
        """The texts' vectors, computed in a forward pass shared with concurrent callers."""
        limit = self.batching.max_queue_texts
        if self._queued_texts + len(texts) > limit:
            self.overloaded += 1
            raise AiOverloaded(
                f"the model's queue is full ({self._queued_texts} texts waiting or running,"
                f" max_queue_texts = {limit}); try again later"
            )
        loop = asyncio.get_running_loop()
        call = _Call(list(texts), pooling, loop.create_future())
        self._waiting.append(call)
        self._queued_texts += len(call.texts)
        self.calls += 1
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._work(), name=WORKER_TASK)
        assert self._wake is not None
        self._wake.set()
        return await call.done

    def stats(self) -> dict[str, Any]:
        """Counters: calls taken, texts embedded, forward passes, the largest batch."""
        return {
            "calls": self.calls,
            "texts": self.texts,
            "forward_passes": self.model.forward_passes,
            "largest_batch": self.largest_batch,
            "overloaded": self.overloaded,
            "queued_texts": self._queued_texts,
        }

    async def _work(self) -> None:
        assert self._wake is not None
        wait = self.batching.batch_wait_ms / 1000
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            if wait > 0 and self._pending_texts() < self.batching.max_batch_texts:
                await asyncio.sleep(wait)
            batch = self._take()
            texts = [t for call in batch for t in call.texts]
            try:
                vectors = await asyncio.to_thread(self.model.embed, texts, batch[0].pooling)
                rows: list[list[float]] = vectors.tolist()
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                for call in batch:
                    if not call.done.done():
                        call.done.set_exception(exc)
            else:
                self.texts += len(texts)
                self.largest_batch = max(self.largest_batch, len(texts))
                start = 0
                for call in batch:
                    if not call.done.done():
                        call.done.set_result(rows[start : start + len(call.texts)])
                    start += len(call.texts)
            finally:
                self._queued_texts -= len(texts)

    async def close(self) -> None:
        """Stop the worker; calls still waiting fail with AiOverloaded."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while self._waiting:
            call = self._waiting.popleft()
            if not call.done.done():
                call.done.set_exception(AiOverloaded("the model's replica closed"))
        self._queued_texts = 0

    def _pending_texts(self) -> int:
        return sum(len(call.texts) for call in self._waiting)

    def _take(self) -> list[_Call]:
        """The first waiting call, and every later one of its pooling that fits the batch."""
        first = self._waiting.popleft()
        batch, size = [first], len(first.texts)
        kept: deque[_Call] = deque()
        while self._waiting:
            call = self._waiting.popleft()
            if (
                call.pooling == first.pooling
                and size + len(call.texts) <= self.batching.max_batch_texts
            ):
                batch.append(call)
                size += len(call.texts)
            else:
                kept.append(call)
        self._waiting = kept
        return batch


def model_server(folder: str, batching: dict[str, Any]) -> ModelServer:
    """A replica's object, as a service actor makes it (``actors.ServiceSpec.factory``)."""
    return ModelServer(folder, Batching.from_options(batching))
