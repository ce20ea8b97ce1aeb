"""The vector index client (``env.VECTORIZE``): Cloudflare Vectorize's shape in Python.

::

    await env.VECTORIZE.upsert([{"id": "1", "values": [...], "metadata": {"url": "/a"}}])
    hits = await env.VECTORIZE.query([...], top_k=5, return_metadata="all")

Every argument is checked here first (:mod:`bindings.vectorize._checks`), so a call that fails
wrote nothing. An index is ``shards`` objects of the internal binding ``_VECTORIZE``
(:mod:`bindings.vectorize._shard`); a vector lives in the shard its id hashes to, a query
asks every shard for its ``top_k`` and merges them.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raydo.actors import Namespace, Stub
from raydo.storage import LimitExceeded

from ._checks import WireBatch, check_batch, check_ids, check_namespace, check_top_k, check_values
from ._filter import parse_filter
from ._search import EXACT_BELOW, higher_is_closer
from ._shard import GRAPH_BUILD_WAIT_S, iso
from ._types import (
    INDEX_TYPES,
    RETURN_METADATA,
    IndexInfo,
    MetadataIndex,
    StoredVector,
    VectorizeError,
    VectorLimits,
    VectorMatch,
    VectorMatches,
    VectorMutation,
    changed_shape,
)


def shard_of(id_: str, shards: int) -> int:
    """The shard a vector id lives in: stable across processes and restarts."""
    digest = hashlib.blake2b(id_.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_name(index_name: str, shard: int) -> str:
    return f"{index_name}/{shard}"


class VectorizeIndex:
    """``env.<BINDING>`` of a ``[[vectorize]]`` entry: one vector index.

    A mutation is visible to every query, from every process, as soon as its call returns
    (Cloudflare's are applied a few seconds later: there is nothing to poll for here).
    """

    def __init__(
        self,
        namespace: Namespace,
        index_name: str,
        dimensions: int,
        metric: str,
        shards: int = 1,
        limits: VectorLimits | None = None,
        exact_below: int = EXACT_BELOW,
        build_wait_s: float = GRAPH_BUILD_WAIT_S,
    ) -> None:
        self._namespace = namespace
        self.index_name = index_name
        self.dimensions = dimensions
        self.metric = metric
        self.shards = shards
        self.limits = limits or VectorLimits()
        self.exact_below = exact_below
        self.build_wait_s = build_wait_s
        self._ids = [namespace.id_from_name(shard_name(index_name, k)) for k in range(shards)]

    def __repr__(self) -> str:
        return f"VectorizeIndex({self.index_name!r}, {self.dimensions}, {self.metric!r})"

    def _stub(self, shard: int) -> Any:
        return Stub(self._namespace, self._ids[shard])

    # ---- writes ------------------------------------------------------------------------------

    async def insert(self, vectors: Sequence[Any]) -> VectorMutation:
        """Write ``vectors``; an id that exists already is skipped (its vector is kept).
        ``count`` is how many were written."""
        return await self._write("insert", vectors)

    async def upsert(self, vectors: Sequence[Any]) -> VectorMutation:
        """Write ``vectors``; an id that exists has its values, namespace and metadata
        replaced whole (metadata not given is dropped)."""
        return await self._write("upsert", vectors)

    def check(self, vectors: Sequence[Any]) -> None:
        """Raise what :meth:`insert` would raise for ``vectors`` on their own (malformed
        input, a limit), sending nothing: ``raydo vectorize insert`` checks a whole file
        first with it."""
        check_batch(vectors, self.dimensions, self.limits)

    async def _write(self, mode: str, vectors: Sequence[Any]) -> VectorMutation:
        batch = check_batch(vectors, self.dimensions, self.limits)
        matrix = np.frombuffer(batch.values, dtype=np.float32).reshape(-1, self.dimensions)
        parts: dict[int, list[int]] = {}
        for i, id_ in enumerate(batch.ids):
            parts.setdefault(shard_of(id_, self.shards), []).append(i)
        if self.shards > 1:
            # Checked on every shard before any writes, so a call that one shard would refuse
            # writes nothing anywhere: the index's bound on the total (each shard bounds only
            # its own count), and the shape (an empty shard would take a shape the config
            # changed to, beside shards that hold the old one).
            states = await asyncio.gather(*(self._stub(s).describe() for s in range(self.shards)))
            for state in states:
                self._check_shape(state)
            total = sum(int(state["count"]) for state in states)
            if total + len(batch.ids) > self.limits.max_vectors:
                await self._check_room(batch, total)
        mutation = uuid.uuid4().hex
        replies = await asyncio.gather(
            *(
                self._stub(shard).write(
                    mode,
                    self.dimensions,
                    self.metric,
                    [
                        [batch.ids[i] for i in rows],
                        [batch.namespaces[i] for i in rows],
                        matrix[rows].tobytes(),
                        [batch.metadata[i] for i in rows],
                    ],
                    mutation,
                    self.limits.max_vectors,
                    self.exact_below,
                    self.build_wait_s,
                )
                for shard, rows in parts.items()
            )
        )
        count = 0
        for reply in replies:
            _raise_error(reply)
            count += int(reply["count"])
        return VectorMutation(mutation, count)

    def _check_shape(self, state: Mapping[str, Any]) -> None:
        """Refuse, as the shard would, when a shard holds vectors of another shape."""
        held = (state["dimensions"], state["metric"])
        if held[0] is not None and held != (self.dimensions, self.metric):
            raise changed_shape(held, (self.dimensions, self.metric))

    async def _check_room(self, batch: WireBatch, total: int) -> None:
        existing = {v.id for v in await self.get_by_ids(batch.ids)}
        new = len([i for i in batch.ids if i not in existing])
        if total + new > self.limits.max_vectors:
            raise LimitExceeded(
                "max_vectors",
                f"the index would hold {total + new} vectors; at most"
                f" {self.limits.max_vectors} (max_vectors)",
            )

    async def delete_by_ids(self, ids: Sequence[str]) -> VectorMutation:
        """Delete the vectors of ``ids``; ids that do not exist are ignored."""
        checked = check_ids(ids, self.limits, "delete_by_ids")
        mutation = uuid.uuid4().hex
        parts = self._split(checked)
        if not parts:
            parts = {0: []}
        replies = await asyncio.gather(
            *(self._stub(s).delete(part, mutation) for s, part in parts.items())
        )
        count = 0
        for reply in replies:
            _raise_error(reply)
            count += int(reply["count"])
        return VectorMutation(mutation, count)

    def _split(self, ids: list[str]) -> dict[int, list[str]]:
        parts: dict[int, list[str]] = {}
        for id_ in ids:
            parts.setdefault(shard_of(id_, self.shards), []).append(id_)
        return parts

    # ---- reads -------------------------------------------------------------------------------

    async def query(
        self,
        vector: Sequence[float] | Any,
        top_k: int = 5,
        namespace: str | None = None,
        return_values: bool = False,
        return_metadata: str = "none",
        filter: dict[str, Any] | None = None,
    ) -> VectorMatches:
        """The ``top_k`` vectors closest to ``vector``, closest first.

        In order: ``namespace`` narrows the candidates to that namespace, ``filter`` to the
        vectors whose indexed metadata matches, and of those the ``top_k`` closest are taken
        (exactly below ``exact_below`` candidates per shard, through the HNSW graph above).
        Every score is exact. ``return_values`` adds the values, ``return_metadata`` the
        indexed metadata (``"indexed"``) or all of it (``"all"``); the namespace comes with
        either.
        """
        if return_metadata not in RETURN_METADATA:
            raise VectorizeError(
                f"return_metadata must be one of {', '.join(RETURN_METADATA)},"
                f" got {return_metadata!r:.40}"
            )
        if not isinstance(return_values, bool):
            raise VectorizeError("return_values must be True or False")
        top_k = check_top_k(top_k, return_values or return_metadata == "all", self.limits)
        query = check_values(vector, self.dimensions, "the query vector")
        space = None if namespace is None else check_namespace(namespace, self.limits)
        parse_filter(filter, self.limits)
        asked = [
            self._stub(s).query(
                self.dimensions,
                self.metric,
                query.tobytes(),
                top_k,
                space,
                filter,
                return_values,
                return_metadata,
                self.exact_below,
                self.build_wait_s,
            )
            for s in range(self.shards)
        ]
        # One shard: its answer is awaited directly (gather would add a task and a pass).
        replies = [await asked[0]] if len(asked) == 1 else await asyncio.gather(*asked)
        rows: list[list[Any]] = []
        for reply in replies:
            _raise_error(reply)
            rows += reply["matches"]
        if self.shards > 1:
            rows.sort(key=lambda r: -r[1] if higher_is_closer(self.metric) else r[1])
            del rows[top_k:]
        matches = [_match(r, return_values, return_metadata) for r in rows]
        return VectorMatches(matches, len(matches))

    async def query_by_id(
        self,
        id: str,
        top_k: int = 5,
        namespace: str | None = None,
        return_values: bool = False,
        return_metadata: str = "none",
        filter: dict[str, Any] | None = None,
    ) -> VectorMatches:
        """:meth:`query` with the values of the stored vector ``id`` (the vector itself is
        among the matches); :class:`VectorizeError` when there is no such vector."""
        found = await self.get_by_ids([id])
        if not found:
            raise VectorizeError(f"no vector with id {id!r:.80} in index {self.index_name!r}")
        return await self.query(
            found[0].values,
            top_k=top_k,
            namespace=namespace,
            return_values=return_values,
            return_metadata=return_metadata,
            filter=filter,
        )

    async def get_by_ids(self, ids: Sequence[str]) -> list[StoredVector]:
        """The stored vectors of ``ids``, in the order asked; ids not found are left out."""
        checked = check_ids(ids, self.limits, "get_by_ids")
        parts = self._split(checked)
        replies = await asyncio.gather(*(self._stub(s).get(part) for s, part in parts.items()))
        by_id: dict[str, StoredVector] = {}
        for reply in replies:
            for id_, namespace, vals, metadata in reply:
                by_id[id_] = StoredVector(
                    id_,
                    np.frombuffer(vals, dtype=np.float32).tolist(),
                    namespace,
                    _json(metadata),
                )
        return [by_id[i] for i in checked if i in by_id]

    async def describe(self) -> IndexInfo:
        """How many vectors the index holds, its shape and the last mutation applied (every
        mutation whose call returned is applied)."""
        parts = await asyncio.gather(*(self._stub(s).describe() for s in range(self.shards)))
        last = max(parts, key=lambda p: p["mutation_at"] or 0.0)
        return IndexInfo(
            vector_count=sum(int(p["count"]) for p in parts),
            dimensions=self.dimensions,
            metric=self.metric,
            processed_up_to_mutation=last["mutation"],
            processed_up_to_datetime=iso(last["mutation_at"]),
        )

    async def shard_status(self) -> list[dict[str, Any]]:
        """Each shard's own figures: vectors, whether it searches through a graph, how long
        it took to load and to build the graph, its memory."""
        return list(await asyncio.gather(*(self._stub(s).describe() for s in range(self.shards))))

    async def list_ids(self, cursor: str = "", count: int = 100) -> tuple[list[str], str | None]:
        """A page of ids in order, after ``cursor``; the next cursor, None after the last."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
            raise VectorizeError("count must be an integer from 1 to 1000")
        pages = await asyncio.gather(
            *(self._stub(s).list_ids(cursor, count) for s in range(self.shards))
        )
        ids = sorted(i for page in pages for i in page)[:count]
        return ids, (ids[-1] if len(ids) == count else None)

    # ---- metadata indexes ------------------------------------------------------------------

    async def create_metadata_index(self, property_name: str, index_type: str) -> None:
        """Make ``property_name`` filterable for vectors written from now on."""
        if index_type not in INDEX_TYPES:
            raise VectorizeError(f"an index type is one of {', '.join(INDEX_TYPES)}")
        for s in range(self.shards):
            reply = await self._stub(s).create_metadata_index(
                property_name, index_type, self.limits.max_metadata_indexes
            )
            _raise_error(reply)

    async def delete_metadata_index(self, property_name: str) -> None:
        for s in range(self.shards):
            _raise_error(await self._stub(s).delete_metadata_index(property_name))

    async def list_metadata_indexes(self) -> list[MetadataIndex]:
        rows = await self._stub(0).metadata_indexes()
        return [MetadataIndex(p, t) for p, t in rows]

    async def drop(self) -> None:
        """Delete every vector and metadata index of the index."""
        for s in range(self.shards):
            await self._stub(s).drop()


def _json(text: str) -> Any:
    import json

    return json.loads(text) if text else None


def _match(row: list[Any], values: bool, metadata: str) -> VectorMatch:
    id_, score, namespace, vals, meta = row
    want_namespace = values or metadata != "none"
    return VectorMatch(
        id=id_,
        score=float(score),
        values=np.frombuffer(vals, dtype=np.float32).tolist() if values else None,
        namespace=namespace if want_namespace else None,
        metadata=meta if metadata != "none" else None,
    )


def _raise_error(reply: Any) -> None:
    error = reply.get("error") if isinstance(reply, dict) else None
    if error is not None:
        if error.get("limit"):
            raise LimitExceeded(str(error["limit"]), str(error["message"]))
        raise VectorizeError(str(error["message"]))
