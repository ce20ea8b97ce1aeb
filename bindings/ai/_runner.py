"""Where embedding models run: the :class:`EmbeddingRunner` protocol ``env.AI`` calls;
:class:`LocalRunner` runs each model's :class:`ModelServer` in this process (forward passes in
a worker thread, so the event loop is not blocked), :class:`PoolRunner` sends the texts to a
pool of service actors (Ray actors under ``raydo dev`` and ``raydo serve``), each one
replica batching its callers' texts."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from raydo.actors import ServiceReplica, Services, ServiceSpec

from ._batcher import Batching, ModelServer, PoolSettings
from ._types import Pooling


class EmbeddingRunner(Protocol):
    """Embeds texts with a configured model; the texts are already checked."""

    async def embed(self, model: str, texts: list[str], pooling: Pooling) -> list[list[float]]:
        """One vector (length 1) per text, in order."""
        ...

    async def stats(self, model: str) -> list[dict[str, Any]]:
        """Each replica's counters (``ModelServer.stats``)."""
        ...

    async def aclose(self) -> None:
        """Stop what the runner started in this process."""
        ...


class LocalRunner:
    """Runs the models in this process (``--in-process`` and ``start_app``'s default)."""

    def __init__(self, folders: Mapping[str, Path], batching: Mapping[str, Batching]) -> None:
        self.folders = dict(folders)
        self.batching = dict(batching)
        """Each model's batching settings."""
        self._servers: dict[str, ModelServer] = {}
        self._loading: dict[str, asyncio.Lock] = {}

    async def server(self, model: str) -> ModelServer:
        """The model's server, loaded (in a thread) on first use."""
        server = self._servers.get(model)
        if server is None:
            async with self._loading.setdefault(model, asyncio.Lock()):
                server = self._servers.get(model)
                if server is None:
                    server = await asyncio.to_thread(
                        ModelServer, self.folders[model], self.batching[model]
                    )
                    self._servers[model] = server
        return server

    async def embed(self, model: str, texts: list[str], pooling: Pooling) -> list[list[float]]:
        return await (await self.server(model)).embed(texts, pooling)

    async def stats(self, model: str) -> list[dict[str, Any]]:
        return [(await self.server(model)).stats()]

    async def aclose(self) -> None:
        """Stop each loaded model's worker (calls still waiting fail)."""
        servers, self._servers = self._servers, {}
        for server in servers.values():
            await server.close()


def service_name(model: str) -> str:
    """A model's service name: its name without the characters Ray names should not hold."""
    return "ai-" + "".join(c if c.isalnum() or c in "-._" else "_" for c in model)


class PoolRunner:
    """Sends each call to the model's replicas in turn (service actors: on Ray, Ray actors
    reserving ``num_cpus`` and ``num_gpus`` each)."""

    def __init__(
        self,
        services: Services,
        folders: Mapping[str, Path],
        pools: Mapping[str, PoolSettings],
    ) -> None:
        self._services = services
        self._specs = {
            model: ServiceSpec(
                name=service_name(model),
                factory="raydo.bindings.ai._batcher:model_server",
                arguments={"folder": str(folder), "batching": asdict(pools[model].batching)},
                replicas=pools[model].replicas,
                num_cpus=pools[model].num_cpus,
                num_gpus=pools[model].num_gpus,
            )
            for model, folder in folders.items()
        }
        self._turns: dict[str, Iterator[ServiceReplica]] = {}

    def _next(self, model: str) -> ServiceReplica:
        turn = self._turns.get(model)
        if turn is None:
            turn = self._turns[model] = itertools.cycle(self._services.replicas(self._specs[model]))
        return next(turn)

    async def embed(self, model: str, texts: list[str], pooling: Pooling) -> list[list[float]]:
        vectors: list[list[float]] = await self._next(model).call("embed", texts, pooling)
        return vectors

    async def stats(self, model: str) -> list[dict[str, Any]]:
        replicas = self._services.replicas(self._specs[model])
        return list(await asyncio.gather(*(r.call("stats") for r in replicas)))

    async def aclose(self) -> None:
        """Nothing of this process to stop: the replicas stop with the app's hosts."""
