"""The in-memory side of one shard: every vector in a float32 matrix, searched exactly with
numpy while the candidates are few, and through an HNSW graph (usearch) above that.

The graph only proposes candidates: every result is scored again exactly from the matrix, so
scores are the metric's exact values whichever path found them. Scores follow Cloudflare:
``cosine`` is the cosine similarity (1 identical, higher is closer), ``euclidean`` the L2
distance (0 identical, lower is closer), ``dot-product`` the negated dot product (lower is
closer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from raydo.actors.placement import load_ray

from ._blocks import BLOCK_MIN_ROWS, BLOCKS_SHARE, Block, Blocks

Array = np.ndarray[Any, Any]

#: Below this many candidates a query scans them exactly (bench/exact_crossover.py: in a
#: shard of 100,000 at 384 dimensions the scan is faster up to 10,000 rows of a namespace and
#: 2.6x slower at 20,000; between, exactness is worth the difference).
EXACT_BELOW = 20_000
#: How many more candidates than ``top_k`` the graph is asked for, before exact re-scoring.
OVERSAMPLE = 4
#: Rows a graph build copies and adds at a time (a build apart never copies the whole matrix).
BUILD_CHUNK = 50_000
#: The graph's links per node (usearch's ``connectivity``).
CONNECTIVITY = 16
#: The graph's breadth while adding (usearch's ``expansion_add``).
EXPANSION_ADD = 128
#: The graph's search breadth (usearch's ``expansion_search``). usearch keeps it out of a
#: saved file (``Index.restore`` answers 64), so :meth:`VectorTable.attach` sets it again.
EXPANSION_SEARCH = 128

_USEARCH_METRIC = {"cosine": "cos", "euclidean": "l2sq", "dot-product": "ip"}
#: What the graph holds of each vector. Cosine ranks by direction alone, so its graph holds
#: unit vectors as bytes (usearch's ``i8``: a quarter of the memory, and a search about half
#: as long at 384 dimensions, measured in bench/vectors.py); the exact re-scoring from the
#: float32 matrix gives back the recall and the exact scores. Euclidean and dot-product
#: depend on lengths, which bytes of unbounded values would clip, so they stay float32.
GRAPH_DTYPE = {"cosine": "i8", "euclidean": "f32", "dot-product": "f32"}


def higher_is_closer(metric: str) -> bool:
    return metric == "cosine"


class VectorTable:
    """Rows of vectors with their ids and namespaces; rows of deleted vectors are reused."""

    def __init__(
        self,
        dimensions: int,
        metric: str,
        exact_below: int = EXACT_BELOW,
        graph_dtype: str | None = None,
    ) -> None:
        self.dimensions = dimensions
        self.metric = metric
        #: What a graph built here holds (``GRAPH_DTYPE`` of the metric unless given).
        self.graph_dtype = graph_dtype or GRAPH_DTYPE[metric]
        self.exact_below = exact_below
        self.matrix: Array = np.zeros((0, dimensions), dtype=np.float32)
        self.norms: Array = np.zeros(0, dtype=np.float32)
        self.valid: Array = np.zeros(0, dtype=bool)
        self.ids: list[str | None] = []
        self.namespaces: list[str] = []
        self.row_of: dict[str, int] = {}
        #: Each row's namespace as a number (-1: a free row), so that a namespace's rows
        #: are one array comparison; ``_codes`` numbers the namespaces.
        self.namespace_codes: Array = np.zeros(0, dtype=np.int32)
        self._codes: dict[str, int] = {}
        #: Contiguous copies of some namespaces' and filters' rows, for their exact scans
        #: (see _blocks), and how many writes the table took (a filter's block holds it).
        self.blocks = Blocks()
        self.writes = 0
        self._free: list[int] = []
        self._reserved: dict[str, int] = {}
        """Rows kept for ids a saved layout placed there (:meth:`reserve`)."""
        self._stale: list[int] = []
        self.caught_up = 0
        """How many rows a saved graph was caught up with when it was taken."""
        self._graph: Any = None
        self._graph_holds_bytes = False
        self._building: set[int] | None = None
        """While a graph is built apart (:meth:`start_build`): the rows written or deleted
        since it began, brought up to date when it is taken."""
        self.build_seconds = 0.0
        self.graph_source: str | None = None
        """``"built"`` or ``"saved"`` (loaded from the file beside the shard's), once there
        is a graph."""

    def __len__(self) -> int:
        return len(self.row_of)

    # ---- writes ------------------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        size = self.matrix.shape[0]
        if need <= size:
            return
        new = max(need, size * 2, 1024)
        matrix = np.zeros((new, self.dimensions), dtype=np.float32)
        matrix[:size] = self.matrix
        self.matrix = matrix
        self.norms = np.concatenate([self.norms, np.zeros(new - size, dtype=np.float32)])
        self.valid = np.concatenate([self.valid, np.zeros(new - size, dtype=bool)])
        self.namespace_codes = np.concatenate(
            [self.namespace_codes, np.full(new - size, -1, dtype=np.int32)]
        )

    def put(self, id_: str, values: Array, namespace: str) -> int:
        """Set ``id_``'s values and namespace (a new row, or its row again); its row."""
        row = self._place(id_, values, namespace)
        if self._graph is not None:
            self._graph_add(np.asarray([row], dtype=np.uint64))
        return row

    def _place(self, id_: str, values: Array, namespace: str) -> int:
        row = self.row_of.get(id_)
        if row is not None:
            self._unlink(row)
        elif self._reserved and id_ in self._reserved:
            row = self._reserved.pop(id_)
        elif self._free:
            row = self._free.pop()
        else:
            row = len(self.ids)
            self.ids.append(None)
            self.namespaces.append("")
            self._grow(row + 1)
        if self._building is not None:
            self._building.add(row)
        code = self._codes.setdefault(namespace, len(self._codes))
        self.blocks.drop(int(self.namespace_codes[row]))  # the row's namespace until now
        self.blocks.drop(code)
        self.writes += 1
        self.matrix[row] = values
        self.norms[row] = float(np.linalg.norm(values))
        self.valid[row] = True
        self.ids[row] = id_
        self.namespaces[row] = namespace
        self.row_of[id_] = row
        self.namespace_codes[row] = code
        return row

    def put_many(self, ids: list[str], matrix: Array, namespaces: list[str]) -> list[int]:
        """:meth:`put` of each (ids distinct), the graph taking the rows in one batch (its
        threads build them in parallel); their rows."""
        rows = [self._place(i, matrix[k], namespaces[k]) for k, i in enumerate(ids)]
        if self._graph is not None and rows:
            self._graph_add(np.asarray(rows, dtype=np.uint64))
        return rows

    def remove(self, id_: str) -> int | None:
        """Forget ``id_``; the row it had, or None when it had none."""
        row = self.row_of.pop(id_, None)
        if row is None:
            return None
        self._unlink(row)
        if self._building is not None:
            self._building.add(row)
        self.blocks.drop(int(self.namespace_codes[row]))
        self.writes += 1
        self.valid[row] = False
        self.namespace_codes[row] = -1
        self.ids[row] = None
        self._free.append(row)
        return row

    def _unlink(self, row: int) -> None:
        if self._graph is not None:
            self._graph.remove(row)

    # ---- the graph ---------------------------------------------------------------------------

    def reserve(self, ids: list[str | None], changed: set[str]) -> None:
        """Before the first put: keep row ``k`` for ``ids[k]`` (a saved graph's layout), so
        the rows come back where the saved graph's keys point; a None is a free row, and so
        is the row of an id in ``changed`` (written or deleted since the save)."""
        assert not self.ids, "reserve() comes before any put"
        self.blocks.clear()
        self._grow(len(ids))
        self.ids = [None] * len(ids)
        self.namespaces = [""] * len(ids)
        self._reserved = {
            id_: row for row, id_ in enumerate(ids) if id_ is not None and id_ not in changed
        }
        self._stale = [row for row, id_ in enumerate(ids) if id_ is not None and id_ in changed]
        self._free = [
            row for row in range(len(ids) - 1, -1, -1) if ids[row] is None or ids[row] in changed
        ]

    def attach(self, graph: Any, changed: set[str]) -> bool:
        """Take a saved graph once every reserved row was put again, catching it up: the
        rows of ``changed`` ids leave it, and those ids' rows now (written since) join it.
        False (the graph not taken, the rows left over freed) when a reserved row was not
        put again."""
        leftover, self._reserved = self._reserved, {}
        stale, self._stale = self._stale, []
        if leftover:
            self._free.extend(leftover.values())
            return False
        # A restored graph searches at usearch's default breadth, not ours: recall fell
        # after every restart (0.928 at 1,000,000 vectors where a built graph finds 0.972).
        graph.expansion_add = EXPANSION_ADD
        graph.expansion_search = EXPANSION_SEARCH
        for row in stale:
            graph.remove(row)
        rows = np.asarray(
            sorted(self.row_of[i] for i in changed if i in self.row_of), dtype=np.uint64
        )
        if len(graph) != len(self) - len(rows):
            return False
        self._take_graph(graph)
        if len(rows):
            self._graph_add(rows)
        self.graph_source = "saved"
        self.caught_up = len(stale) + len(rows)
        return True

    def graph_state(self) -> tuple[Any, list[str | None]] | None:
        """The graph and the id of each row (its keys), to save; None without a graph."""
        if self._graph is None:
            return None
        return self._graph, list(self.ids)

    def ensure_graph(self) -> None:
        """Build the HNSW graph once the table is past ``exact_below`` (and keep it after)."""
        build = self.start_build()
        if build is not None:
            self.finish_build(build())

    def start_build(self) -> Callable[[], tuple[Any, float]] | None:
        """Begin a graph apart from the table, once it is past ``exact_below``: the work to
        run (on a thread: it reads only the rows of now, from the arrays of now), or None when
        there is a graph or a build already. Until :meth:`finish_build` takes what the work
        returns, queries scan exactly, and the rows written or deleted meanwhile are noted."""
        if self._graph is not None or self._building is not None or len(self) < self.exact_below:
            return None
        load_ray()  # before usearch's own C++ runtime (see load_ray)
        from usearch.index import Index

        rows = np.flatnonzero(self.valid[: len(self.ids)]).astype(np.uint64)
        # A later _grow makes new arrays and leaves these as they are; a row written in
        # place meanwhile is in _building, and taken again from the table at the end.
        matrix, norms = self.matrix, self.norms
        dimensions, metric, dtype = self.dimensions, _USEARCH_METRIC[self.metric], self.graph_dtype
        self._building = set()

        def build() -> tuple[Any, float]:
            started = time.perf_counter()
            graph = Index(
                ndim=dimensions,
                metric=metric,
                dtype=dtype,
                connectivity=CONNECTIVITY,
                expansion_add=EXPANSION_ADD,
                expansion_search=EXPANSION_SEARCH,
            )
            for start in range(0, len(rows), BUILD_CHUNK):  # a chunk's copy at a time
                chunk = rows[start : start + BUILD_CHUNK]
                at = chunk.astype(np.int64)
                vectors = matrix[at]
                graph.add(chunk, self._unit(vectors, norms[at]) if _holds_bytes(graph) else vectors)
            return graph, time.perf_counter() - started

        return build

    def finish_build(self, built: tuple[Any, float]) -> None:
        """Take the graph :meth:`start_build`'s work made, bringing the rows written or
        deleted since it began up to date."""
        graph, seconds = built
        changed, self._building = self._building, None
        if changed is None or self._graph is not None:
            return  # abandoned meanwhile
        self._take_graph(graph)
        rows = np.asarray(sorted(changed), dtype=np.uint64)
        if len(rows):
            for row in rows.tolist():
                if graph.contains(row):
                    graph.remove(row)
            now = rows[self.valid[rows.astype(np.int64)]]
            if len(now):
                self._graph_add(now)
        self.graph_source = "built"
        self.build_seconds = seconds

    def abandon_build(self) -> None:
        """Forget a build under way (its work failed): a later :meth:`start_build` begins
        again."""
        self._building = None

    @property
    def building(self) -> bool:
        """True while a graph is built apart and not yet taken."""
        return self._building is not None

    def _graph_add(self, rows: Array) -> None:
        """Add ``rows`` (uint64) to the graph from the matrix: as unit vectors when the graph
        holds bytes, so that every component uses the byte's whole range."""
        vectors = self.matrix[rows.astype(np.int64)]
        if self._graph_holds_bytes:
            vectors = self._unit(vectors, self.norms[rows.astype(np.int64)])
        self._graph.add(rows, vectors)

    def _take_graph(self, graph: Any) -> None:
        self._graph = graph
        self._graph_holds_bytes = _holds_bytes(graph)

    @staticmethod
    def _unit(vectors: Array, norms: Array) -> Array:
        """``vectors`` over their lengths, in float32; a zero vector stays zero."""
        norms = norms.astype(np.float32, copy=False)
        scale = np.divide(np.float32(1), norms, out=np.zeros_like(norms), where=norms > 0)
        result: Array = vectors.astype(np.float32, copy=False) * scale[:, None]
        return result

    @property
    def has_graph(self) -> bool:
        return self._graph is not None

    @property
    def graph_kind(self) -> str | None:
        """What the graph holds of each vector (``"i8"`` or ``"f32"``); None without one."""
        if self._graph is None:
            return None
        return "i8" if self._graph_holds_bytes else "f32"

    @property
    def search_breadth(self) -> int | None:
        """The graph's ``expansion_search`` as it searches now; None without a graph."""
        return None if self._graph is None else int(self._graph.expansion_search)

    # ---- search ------------------------------------------------------------------------------

    def scores(
        self, query: Array, rows: Array, precise: bool = True, length: float | None = None
    ) -> Array:
        """The score of each of ``rows`` against ``query``: exact (float64) when
        ``precise``, else in float32 (for ranking many rows before the exact pass).
        ``length``: the query's length, when the caller has it already."""
        return self._scores(self.matrix[rows], self.norms[rows], query, precise, length)

    def _scores(
        self, vectors: Array, norms: Array, query: Array, precise: bool, length: float | None
    ) -> Array:
        """:meth:`scores` of ``vectors`` (rows of the matrix) of lengths ``norms``."""
        kind = np.float64 if precise else np.float32
        block: Any = vectors.astype(kind, copy=False)
        q: Any = query.astype(kind)
        if self.metric == "euclidean":
            if precise:
                diff = block - q
                result: Array = np.sqrt(np.einsum("ij,ij->i", diff, diff))
                return result
            squared = norms**2 - 2 * (block @ q) + float(q @ q)
            result = np.sqrt(np.maximum(squared, 0))
            return result
        dots: Array = block @ q
        if self.metric == "dot-product":
            return -dots
        if length is None:
            length = _length(query)
        denominator: Any = norms.astype(kind)
        denominator = denominator * length
        # A zero-length vector scores 0 against everything (divide only where it is not).
        result = np.divide(dots, denominator, out=np.zeros_like(dots), where=denominator > 0)
        return result

    def search(
        self,
        query: Array,
        top_k: int,
        mask: Array | None,
        namespace: str | None = None,
        selection: str | None = None,
    ) -> list[tuple[int, float]]:
        """The ``top_k`` closest rows (among ``mask`` when given) and their exact scores,
        closest first. An exact scan may use a block (see :mod:`._blocks`): ``namespace``'s,
        the namespace ``mask`` lies within, or else that of ``selection``, a key naming what
        made ``mask`` (a filter)."""
        candidates = len(self) if mask is None else int(mask.sum())
        if candidates == 0:
            return []
        if self._graph is not None and candidates >= self.exact_below:
            found = self._graph_search(query, top_k, mask, candidates)
            if found is not None:
                return found
        if mask is not None and candidates >= BLOCK_MIN_ROWS:
            block = None
            if namespace is not None:
                block = self._namespace_block(namespace)
            elif selection is not None:
                block = self._selection_block(selection, mask, candidates)
            if block is not None:
                return self._best_in_block(query, block, mask, top_k)
        rows = np.flatnonzero(self.valid[: len(self.ids)] if mask is None else mask)
        return self._best(query, rows, top_k)

    def _selection_block(self, selection: str, mask: Array, candidates: int) -> Block:
        """The block of the rows ``mask`` selects (made by ``selection``): the one kept, if
        no write came since and it holds exactly those rows, else one gathered now."""
        key = ("selection", selection)
        block = self.blocks.get(key)
        if (
            block is not None
            and block.writes == self.writes
            and len(block.rows) == candidates
            and bool(mask[block.rows].all())
        ):
            return block
        rows = np.flatnonzero(mask)
        block = Block(rows, self.matrix[rows], self.norms[rows], self.writes)
        self.blocks.keep(key, block, self._blocks_budget())
        return block

    def _blocks_budget(self) -> int:
        in_use = len(self) * (self.dimensions * self.matrix.itemsize + 16)
        return int(in_use * BLOCKS_SHARE)

    def _namespace_block(self, namespace: str) -> Block | None:
        """The namespace's block, gathered now if it has none; None for a namespace too
        small to be worth one."""
        code = self._codes.get(namespace)
        if code is None:
            return None
        block = self.blocks.get(code)
        if block is None:
            rows = np.flatnonzero(self.namespace_codes[: len(self.ids)] == code)
            if len(rows) < BLOCK_MIN_ROWS:
                return None
            block = Block(rows, self.matrix[rows], self.norms[rows])
            self.blocks.keep(code, block, self._blocks_budget())
        return block

    def _best_in_block(
        self, query: Array, block: Block, mask: Array, top_k: int
    ) -> list[tuple[int, float]]:
        """:meth:`_best` of the rows of ``block`` within ``mask``, ranked roughly from the
        block (contiguous: no gather) before the exact pass over the shortlist."""
        length = _length(query) if self.metric == "cosine" else None
        rough = self._scores(block.matrix, block.norms, query, False, length)
        rough_order = -rough if higher_is_closer(self.metric) else rough
        rows = block.rows
        keep = mask[rows]
        if not keep.all():  # a filter narrows the namespace further
            rows, rough_order = rows[keep], rough_order[keep]
        return self._best(query, rows, top_k, length, rough_order)

    def _graph_search(
        self, query: Array, top_k: int, mask: Array | None, candidates: int
    ) -> list[tuple[int, float]] | None:
        # A mask keeps a share of the rows: ask the graph for proportionally more, and scan
        # exactly when the graph's answer still holds too few of them.
        share = candidates / max(1, len(self))
        want = min(len(self), int(top_k * OVERSAMPLE / max(share, 1e-9)) + 1)
        if want > 4 * self.exact_below:
            return None
        asked = query
        # Only cosine scores and a graph of unit vectors use the query's length.
        wants_length = self._graph_holds_bytes or self.metric == "cosine"
        length = _length(query) if wants_length else None
        if self._graph_holds_bytes and length:
            asked = query * np.float32(1 / length)  # a unit vector, as the graph holds them
        result = self._graph.search(asked, want)
        rows = np.asarray(result.keys, dtype=np.int64)
        if mask is not None:
            rows = rows[mask[rows]]
            if len(rows) < min(top_k, candidates):
                return None
        return self._best(query, rows, top_k, length)

    def _best(
        self,
        query: Array,
        rows: Array,
        top_k: int,
        length: float | None = None,
        rough_order: Array | None = None,
    ) -> list[tuple[int, float]]:
        """The ``top_k`` of ``rows``: a float32 pass keeps a shortlist of many rows (ranked
        by ``rough_order`` when the caller has it, lower closer), an exact one ranks it."""
        shortlist = 2 * top_k + 16
        if len(rows) > 4 * shortlist:
            if rough_order is None:
                rough = self.scores(query, rows, precise=False, length=length)
                rough_order = -rough if higher_is_closer(self.metric) else rough
            rows = rows[np.argpartition(rough_order, shortlist - 1)[:shortlist]]
        scores = self.scores(query, rows, length=length)
        order_by = -scores if higher_is_closer(self.metric) else scores
        if len(rows) > top_k:
            keep = np.argpartition(order_by, top_k - 1)[:top_k]
            keep = keep[np.argsort(order_by[keep], kind="stable")]
        else:
            keep = np.argsort(order_by, kind="stable")
        return list(zip(rows[keep].tolist(), scores[keep].tolist(), strict=True))

    def namespace_mask(self, namespace: str) -> Array:
        code = self._codes.get(namespace)
        if code is None:
            return np.zeros(len(self.ids), dtype=bool)
        mask: Array = self.namespace_codes[: len(self.ids)] == code
        return mask

    def memory_bytes(self) -> int:
        graph = int(self._graph.memory_usage) if self._graph is not None else 0
        return int(self.matrix.nbytes + self.norms.nbytes) + graph + self.blocks.nbytes


def _length(vector: Array) -> float:
    """The Euclidean length of ``vector``, summed in float64."""
    wide = vector.astype(np.float64)
    return math.sqrt(float(wide @ wide))


def _holds_bytes(graph: Any) -> bool:
    """Whether ``graph`` holds bytes (unit vectors as ``i8``): asked of the graph, since a
    saved one keeps the kind it was built with."""
    return bool(graph.dtype.name == "I8")
