"""The object that owns one shard of a vector index (internal binding ``_VECTORIZE``).

An index of ``shards`` shards is that many objects, named ``<index_name>/<k>``; a vector
lives in shard ``hash(id) % shards``. Each shard's SQLite file is the truth (tables
``vec_items``, ``vec_indexed``, ``vec_meta_indexes``, ``vec_state``): a write is committed
before its call returns, so it is visible to every later query at once. The shard's memory
(:class:`VectorTable`: the matrix, and above ``exact_below`` vectors the HNSW graph) is
rebuilt from the file when the object activates, and follows each write.

Errors travel back as values (``{"error": {...}}``), not raised: raising in an event resets
the object, and rebuilding a large index costs seconds. The shard checks its arguments
again, since any object of the app could call it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from raydo.actors import ObjectContext, PlatformObject
from raydo.storage import LimitExceeded, StorageCore

from . import _saved_graph as saved_graph
from ._checks import WireBatch, check_wire_batch
from ._filter import Column, indexed_value, mask_for, parse_filter
from ._search import EXACT_BELOW, GRAPH_DTYPE, VectorTable
from ._types import (
    INDEX_TYPES,
    METRICS,
    RETURN_METADATA,
    VectorizeError,
    VectorLimits,
    changed_shape,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vec_items (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    vals BLOB NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vec_meta_indexes (property TEXT PRIMARY KEY, type TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vec_indexed (
    property TEXT NOT NULL,
    id TEXT NOT NULL,
    value,
    PRIMARY KEY (property, id)
);
CREATE TABLE IF NOT EXISTS vec_state (name TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS vec_graph_journal (id TEXT PRIMARY KEY)
"""
log = logging.getLogger("raydo.vectorize")

#: The graph is saved again once the writes since its last save are this fraction of the
#: shard (1/10: a tenth).
SAVE_SHARE = 10
#: How long an event waits for a graph build it started before it answers without the graph
#: (``graph_build_wait_seconds`` of the index); the build goes on after it.
GRAPH_BUILD_WAIT_S = 1.0
#: Rows read at a time when a shard loads its file.
_LOAD_PAGE = 20_000
#: The shard's own bound on a filter's JSON (the client checks the configured one first).
_FILTER_BOUND = VectorLimits(max_filter_bytes=1 << 20)


class VectorShard(PlatformObject):
    """One shard of one index. Called by :class:`bindings.vectorize.VectorizeIndex` only."""

    def __init__(self, ctx: ObjectContext, env: Any, core: StorageCore) -> None:
        super().__init__(ctx, env, core)
        self._sql = ctx.storage.sql
        self._sql.exec(_SCHEMA)
        state = {r["name"]: r["value"] for r in self._sql.exec("SELECT * FROM vec_state")}
        self._dimensions: int | None = state.get("dimensions")
        self._metric: str | None = state.get("metric")
        self._mutation: str | None = state.get("mutation")
        self._mutation_at: float | None = state.get("mutation_at")
        self._graph_saved: str | None = state.get("graph_saved")
        """The mutation the saved graph was saved at; from then on every id written or
        deleted goes into ``vec_graph_journal`` (same transaction), so that an activation
        takes the saved graph and catches it up with those ids alone."""
        self._table: VectorTable | None = None
        self._threshold = EXACT_BELOW
        self._build_wait = GRAPH_BUILD_WAIT_S
        self._graph_build: asyncio.Future[None] | None = None
        self._indexes: dict[str, str] = {
            r["property"]: r["type"] for r in self._sql.exec("SELECT * FROM vec_meta_indexes")
        }
        self._indexed: dict[str, Column] = {p: Column() for p in self._indexes}
        self._params = core.limits.sql_params
        self._unsaved = 0
        """Vectors written or deleted since the graph was last saved."""
        self._graph_saves = 0
        started = time.perf_counter()
        if self._dimensions is not None and self._metric is not None:
            self._load(self._dimensions, self._metric)
        self._load_seconds = time.perf_counter() - started

    def _load(self, dimensions: int, metric: str) -> None:
        table = VectorTable(dimensions, metric, self._exact_below())
        saved = saved_graph.load(
            self.core.path, mutation=self._graph_saved, shape=_graph_shape(dimensions, metric)
        )
        changed: set[str] = set()
        if saved is not None:
            changed = {r[0] for r in self._sql.exec("SELECT id FROM vec_graph_journal").raw()}
            table.reserve(saved.ids, changed)
        after = 0
        while True:  # in pages, so the rows read stay a small part of the matrix
            rows = list(
                self._sql.exec(
                    "SELECT rowid, id, namespace, vals FROM vec_items WHERE rowid > ?"
                    " ORDER BY rowid LIMIT ?",
                    after,
                    _LOAD_PAGE,
                ).raw()
            )
            if not rows:
                break
            after = rows[-1][0]
            matrix = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32)
            table.put_many(
                [r[1] for r in rows], matrix.reshape(len(rows), dimensions), [r[2] for r in rows]
            )
        for prop, id_, value in self._sql.exec("SELECT * FROM vec_indexed").raw():
            row = table.row_of.get(id_)
            if row is not None and prop in self._indexed:
                self._indexed[prop][row] = (
                    value if self._indexes[prop] != "boolean" else bool(value)
                )
        if saved is not None and not table.attach(saved.graph, changed):
            log.warning(
                "the saved graph of %s does not match its rows; building it", self.core.path
            )
        self._table = table

    def _exact_below(self) -> int:
        return self._threshold

    # ---- shape -----------------------------------------------------------------------------

    def _shape(self, dimensions: object, metric: object, create: bool) -> VectorTable | None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise VectorizeError(f"dimensions must be a positive integer, got {dimensions!r:.40}")
        if metric not in METRICS:
            raise VectorizeError(f"metric must be one of {', '.join(METRICS)}, got {metric!r:.40}")
        if self._table is None:
            if not create:
                return None
            self._put_state("dimensions", dimensions)
            self._put_state("metric", metric)
            self._dimensions, self._metric = dimensions, str(metric)
            self._table = VectorTable(dimensions, str(metric), self._exact_below())
        elif (self._dimensions, self._metric) != (dimensions, metric):
            raise changed_shape((self._dimensions, self._metric), (dimensions, metric))
        return self._table

    def _set_build_wait(self, seconds: object) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise VectorizeError("graph_build_wait_seconds must be a number, 0 or more")
        self._build_wait = float(seconds)

    def _set_threshold(self, exact_below: object) -> None:
        if isinstance(exact_below, bool) or not isinstance(exact_below, int) or exact_below < 1:
            raise VectorizeError("exact_below must be a positive integer")
        self._threshold = exact_below
        if self._table is not None:
            self._table.exact_below = exact_below

    def _put_state(self, name: str, value: Any) -> None:
        self._sql.exec("INSERT OR REPLACE INTO vec_state VALUES (?, ?)", name, value)

    def _mutated(self, mutation_id: str) -> None:
        self._mutation, self._mutation_at = mutation_id, time.time()
        self._put_state("mutation", mutation_id)
        self._put_state("mutation_at", self._mutation_at)

    @staticmethod
    def _error(exc: Exception) -> dict[str, Any]:
        return {"error": {"message": str(exc), "limit": getattr(exc, "limit", None)}}

    # ---- writes ------------------------------------------------------------------------------

    async def write(
        self,
        mode: str,
        dimensions: int,
        metric: str,
        batch: list[Any],
        mutation_id: str,
        max_vectors: int,
        exact_below: int = EXACT_BELOW,
        build_wait_s: float = GRAPH_BUILD_WAIT_S,
    ) -> dict[str, Any]:
        """Insert (``mode="insert"``: ids that exist are skipped) or upsert (``"upsert"``:
        values, namespace and metadata replaced whole). ``{"count": written}``."""
        try:
            if mode not in ("insert", "upsert"):
                raise VectorizeError(f"unknown write mode {mode!r}")
            self._set_threshold(exact_below)
            self._set_build_wait(build_wait_s)
            table = self._shape(dimensions, metric, create=True)
            assert table is not None
            wire = WireBatch(*batch)
            matrix = check_wire_batch(wire, dimensions)
            keep = [
                i for i, id_ in enumerate(wire.ids) if mode == "upsert" or id_ not in table.row_of
            ]
            new = sum(1 for i in keep if wire.ids[i] not in table.row_of)
            if len(table) + new > max_vectors:
                raise LimitExceeded(
                    "max_vectors",
                    f"the shard would hold {len(table) + new} vectors; the index allows"
                    f" {max_vectors} (max_vectors)",
                )
            metadata = [json.loads(m) if m else None for m in wire.metadata]
        except (VectorizeError, LimitExceeded, ValueError, TypeError) as exc:
            return self._error(exc)
        ids = [wire.ids[i] for i in keep]
        self._insert_many(
            "INSERT OR REPLACE INTO vec_items VALUES",
            [
                (wire.ids[i], wire.namespaces[i], matrix[i].tobytes(), wire.metadata[i])
                for i in keep
            ],
        )
        if self._indexes:
            self._delete_indexed(ids)
        self._journal(ids)
        self._mutated(mutation_id)
        # Memory follows only once every statement went through (an error above rolls the
        # event back and resets the object, which reloads from the file).
        rows = table.put_many(
            [wire.ids[i] for i in keep], matrix[keep], [wire.namespaces[i] for i in keep]
        )
        indexed: list[tuple[Any, ...]] = []
        for row, i in zip(rows, keep, strict=True):
            indexed += self._index_row(row, wire.ids[i], metadata[i])
        self._insert_many("INSERT INTO vec_indexed VALUES", indexed)
        await self._maybe_graph(table, written=len(keep))
        return {"count": len(keep)}

    def _index_row(
        self, row: int, id_: str, metadata: dict[str, Any] | None
    ) -> list[tuple[Any, ...]]:
        """Set ``row``'s values in the metadata indexes; the ``vec_indexed`` rows to write."""
        out: list[tuple[Any, ...]] = []
        for prop, values in self._indexed.items():
            value = indexed_value(metadata, prop, self._indexes[prop]) if metadata else None
            values[row] = value
            if value is not None:
                out.append((prop, id_, value))
        return out

    def _insert_many(self, insert: str, rows: list[tuple[Any, ...]]) -> None:
        """``insert`` (``INSERT ... VALUES``) of ``rows``, as many a statement as the
        ``sql_params`` limit lets (one statement a row costs far more)."""
        if not rows:
            return
        width = len(rows[0])
        per = max(1, self._params // width)
        marks = "(" + ", ".join("?" * width) + ")"
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            params = [value for row in chunk for value in row]
            self._sql.exec(f"{insert} {', '.join([marks] * len(chunk))}", *params)

    def _delete_indexed(self, ids: list[str]) -> None:
        per = max(1, self._params)
        for start in range(0, len(ids), per):
            chunk = ids[start : start + per]
            marks = ", ".join("?" * len(chunk))
            self._sql.exec(f"DELETE FROM vec_indexed WHERE id IN ({marks})", *chunk)

    async def _maybe_graph(self, table: VectorTable, written: int = 0) -> None:
        """Build the graph once the shard is past ``exact_below``; save it when it is new,
        and again once the writes since the last save reach a tenth of the shard (so a
        restart loads a recent graph, and a save costs a small share of the writes).

        The build runs on a thread, and the event that starts it waits for it
        ``graph_build_wait_seconds`` at most: a larger shard's build (minutes at a million
        vectors) goes on after the event, later events do not wait for it and queries scan
        exactly meanwhile, and the graph is taken when it is done and saved by the next
        event that comes."""
        self._unsaved += written
        # start_build says whether one is due (past exact_below, no graph, none under way).
        if self._graph_build is None and (work := table.start_build()) is not None:
            # Only the event that starts a build waits for it: the ones after it go on at
            # once, or each would wait its turn's share of a minutes-long build.
            build = self._graph_build = asyncio.ensure_future(self._build(table, work))
            await asyncio.wait({build}, timeout=self._build_wait)
        if table.has_graph and self._unsaved * SAVE_SHARE >= max(1, len(table)):
            mutation, saves = self._mutation, self._graph_saves
            await asyncio.to_thread(self._save_graph, table)
            if mutation is not None and self._graph_saves > saves:
                self._saved_at(mutation)

    async def _build(self, table: VectorTable, work: Callable[[], tuple[Any, float]]) -> None:
        """Run a graph build on a thread and take its graph (the shard's task for it: it
        never raises, and a later build starts only once it ended)."""
        try:
            built = await asyncio.to_thread(work)
        except Exception:  # the index works on without a graph
            log.exception("building the graph of %s failed; queries scan exactly", self.core.path)
            table.abandon_build()
            return
        finally:
            self._graph_build = None
        table.finish_build(built)
        if table is self._table:  # not a table the shard dropped meanwhile
            self._unsaved = max(self._unsaved, len(table))

    def _journal(self, ids: list[str]) -> None:
        if self._graph_saved is not None and ids:
            self._insert_many("INSERT OR IGNORE INTO vec_graph_journal VALUES", [(i,) for i in ids])

    def _save_graph(self, table: VectorTable) -> None:
        state = table.graph_state()
        if state is None or self._mutation is None or self._dimensions is None:
            return
        graph, ids = state
        try:
            saved_graph.save(
                self.core.path,
                graph,
                ids,
                mutation=self._mutation,
                shape=_graph_shape(self._dimensions, str(self._metric)),
            )
        except OSError as exc:  # a cache: the index works on without it
            log.warning("cannot save the graph of %s: %s", self.core.path, exc)
            return
        self._graph_saves += 1

    def _saved_at(self, mutation: str) -> None:
        """The graph was saved at ``mutation``: the journal starts again (committed with the
        event, so a save whose event does not commit is never taken)."""
        self._sql.exec("DELETE FROM vec_graph_journal")
        self._put_state("graph_saved", mutation)
        self._graph_saved = mutation
        self._unsaved = 0

    async def delete(self, ids: list[str], mutation_id: str) -> dict[str, Any]:
        """Delete ``ids`` (those absent are ignored); ``{"count": deleted}``."""
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return self._error(VectorizeError("delete() takes a list of str ids"))
        table = self._table
        present = [i for i in ids if table is not None and i in table.row_of]
        for start in range(0, len(present), max(1, self._params)):
            chunk = present[start : start + max(1, self._params)]
            marks = ", ".join("?" * len(chunk))
            self._sql.exec(f"DELETE FROM vec_items WHERE id IN ({marks})", *chunk)
        self._delete_indexed(present)
        self._journal(present)
        self._mutated(mutation_id)
        if table is not None:
            for id_ in present:
                row = table.remove(id_)
                for values in self._indexed.values():
                    values.pop(row)
            await self._maybe_graph(table, written=len(present))
        return {"count": len(present)}

    # ---- reads -------------------------------------------------------------------------------

    async def query(
        self,
        dimensions: int,
        metric: str,
        vector: bytes,
        top_k: int,
        namespace: str | None,
        filter: dict[str, Any] | None,
        return_values: bool,
        return_metadata: str,
        exact_below: int = EXACT_BELOW,
        build_wait_s: float = GRAPH_BUILD_WAIT_S,
    ) -> dict[str, Any]:
        """The ``top_k`` closest vectors as ``[id, score, namespace, values, metadata]``."""
        try:
            self._set_threshold(exact_below)
            self._set_build_wait(build_wait_s)
            table = self._shape(dimensions, metric, create=False)
            if not isinstance(vector, bytes) or len(vector) != dimensions * 4:
                raise VectorizeError(f"the query vector must be {dimensions} float32")
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise VectorizeError("top_k must be a positive integer")
            if return_metadata not in RETURN_METADATA:
                raise VectorizeError(f"return_metadata must be one of {RETURN_METADATA}")
            conditions = parse_filter(filter, _FILTER_BOUND)
            if table is None or not len(table):
                if conditions:
                    mask_for(conditions, self._indexed, np.zeros(0, dtype=bool))
                return {"matches": []}
            query = np.frombuffer(vector, dtype=np.float32)
            mask = None
            if namespace is not None:
                mask = table.namespace_mask(namespace)
            if conditions:
                base = mask if mask is not None else table.valid[: len(table.ids)]
                mask = mask_for(conditions, self._indexed, base)
        except (VectorizeError, LimitExceeded) as exc:
            return self._error(exc)
        await self._maybe_graph(table)
        selection = json.dumps(filter, sort_keys=True, default=str) if conditions else None
        found = table.search(query, top_k, mask, namespace, selection)
        return {"matches": self._rows(table, found, return_values, return_metadata)}

    def _rows(
        self, table: VectorTable, found: list[tuple[int, float]], values: bool, metadata: str
    ) -> list[list[Any]]:
        out: list[list[Any]] = []
        for row, score in found:
            id_ = table.ids[row]
            assert id_ is not None
            meta: Any = None
            if metadata != "none":
                text = self._sql.exec("SELECT metadata FROM vec_items WHERE id = ?", id_).one()
                meta = json.loads(text["metadata"]) if text["metadata"] else None
                if metadata == "indexed" and meta is not None:
                    meta = {p: v[row] for p, v in self._indexed.items() if row in v} or None
            out.append(
                [
                    id_,
                    score,
                    table.namespaces[row] or None,
                    table.matrix[row].tobytes() if values else None,
                    meta,
                ]
            )
        return out

    async def get(self, ids: list[str]) -> list[list[Any]]:
        """``[id, namespace, values, metadata JSON]`` of each of ``ids`` that exists."""
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise VectorizeError("get() takes a list of str ids")
        found = []
        for id_ in ids:
            rows = self._sql.exec("SELECT * FROM vec_items WHERE id = ?", id_).fetchall()
            if rows:
                r = rows[0]
                found.append([r["id"], r["namespace"] or None, r["vals"], r["metadata"]])
        return found

    async def list_ids(self, after: str, limit: int) -> list[str]:
        """Up to ``limit`` ids after ``after``, in order (``raydo vectorize list-vectors``)."""
        rows = self._sql.exec(
            "SELECT id FROM vec_items WHERE id > ? ORDER BY id LIMIT ?", str(after), int(limit)
        ).raw()
        return [r[0] for r in rows]

    async def describe(self) -> dict[str, Any]:
        table = self._table
        return {
            "count": len(table) if table is not None else 0,
            "dimensions": self._dimensions,
            "metric": self._metric,
            "mutation": self._mutation,
            "mutation_at": self._mutation_at,
            "graph": bool(table is not None and table.has_graph),
            "graph_building": bool(table is not None and table.building),
            "load_seconds": self._load_seconds,
            "graph_seconds": table.build_seconds if table is not None else 0.0,
            "graph_source": table.graph_source if table is not None else None,
            "graph_kind": table.graph_kind if table is not None else None,
            "graph_saves": self._graph_saves,
            "graph_caught_up": table.caught_up if table is not None else 0,
            "graph_search_breadth": table.search_breadth if table is not None else None,
            "memory_bytes": table.memory_bytes() if table is not None else 0,
        }

    # ---- metadata indexes ------------------------------------------------------------------

    async def metadata_indexes(self) -> list[list[str]]:
        return [[p, t] for p, t in sorted(self._indexes.items())]

    async def create_metadata_index(self, prop: str, index_type: str, most: int) -> dict[str, Any]:
        """Make ``prop`` filterable for vectors written from now on."""
        try:
            if not isinstance(prop, str) or not prop or prop.startswith("$") or '"' in prop:
                raise VectorizeError(
                    f"a property name must be a non-empty string, got {prop!r:.60}"
                )
            if index_type not in INDEX_TYPES:
                raise VectorizeError(f"an index type is one of {', '.join(INDEX_TYPES)}")
            if prop in self._indexes:
                raise VectorizeError(f"property {prop!r} already has a metadata index")
            if len(self._indexes) >= most:
                raise LimitExceeded(
                    "max_metadata_indexes",
                    f"the index has {len(self._indexes)} metadata indexes; at most {most}"
                    " (max_metadata_indexes)",
                )
        except (VectorizeError, LimitExceeded) as exc:
            return self._error(exc)
        self._sql.exec("INSERT INTO vec_meta_indexes VALUES (?, ?)", prop, index_type)
        self._indexes[prop] = index_type
        self._indexed[prop] = Column()
        return {"ok": True}

    async def delete_metadata_index(self, prop: str) -> dict[str, Any]:
        if prop not in self._indexes:
            return self._error(VectorizeError(f"property {prop!r:.60} has no metadata index"))
        self._sql.exec("DELETE FROM vec_meta_indexes WHERE property = ?", prop)
        self._sql.exec("DELETE FROM vec_indexed WHERE property = ?", prop)
        del self._indexes[prop]
        del self._indexed[prop]
        return {"ok": True}

    async def drop(self) -> dict[str, Any]:
        """Delete every vector, metadata index and the shape (``raydo vectorize delete``)."""
        for table in (
            "vec_items",
            "vec_indexed",
            "vec_meta_indexes",
            "vec_state",
            "vec_graph_journal",
        ):
            self._sql.exec(f"DELETE FROM {table}")
        self._table = None
        self._dimensions = self._metric = self._mutation = self._graph_saved = None
        self._mutation_at = None
        self._indexes.clear()
        self._indexed.clear()
        return {"ok": True}


def _graph_shape(dimensions: int, metric: str) -> str:
    """What a saved graph must have been saved for to be loaded: its dimensions, metric and
    what it holds (a float32 graph saved before cosine graphs held bytes is built again)."""
    return f"{dimensions}/{metric}/{GRAPH_DTYPE[metric]}"


def iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()
