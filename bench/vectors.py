"""The vector index (``[[vectorize]]``) through its binding, beside exact search with numpy and
usearch called directly, over the same vectors in the same run.

Per size (``--sizes``, 384 dimensions, cosine): clustered synthetic vectors (``--clusters``
centres, each vector a centre plus noise; queries are new points of the same clusters), each
with one of 10 namespaces and a metadata field ``cat`` (one of 20 values, with a metadata
index). The index runs with its hosts in this process (``raydo.gateway.cli_vectorize
.open_index``: the same runtime as ``raydo dev --in-process``; no HTTP), one shard.

* **insert**: every vector through ``upsert`` in calls of 1,000 (values as numpy rows), the
  index's graph built along the way: vectors per second, and the memory per vector
  (the shard's matrix and graph);
* **load**: the app stopped and started again, then the first query: the seconds to read the
  shard's file and its saved graph (or to build the graph, should the saved one not serve);
* **queries** (``--queries`` of them, one at a time, ``top_k=10``): queries per second, p50
  and p99 latency and recall@10 against exact search, plain, with ``namespace=`` (a tenth of
  the vectors) and with ``filter={"cat": 3}`` (a twentieth);
* **numpy**: exact search over the same matrix (normalised rows, one matrix-vector product
  and a partial sort a query);
* **usearch**: the same graph parameters built and searched by usearch directly (one query
  at a time, 10 results): the raw library's queries per second, and the binding's share;
  once holding float32 (usearch's default) and once bytes (``i8``), as the binding's cosine
  graph does (``GRAPH_DTYPE`` in ``raydo/bindings/vectorize/_search.py``). The binding asks
  its graph for 4x the results and scores them again exactly from float32, so its recall is
  the float32 graph's while the raw ``i8`` row shows what bytes alone give.

Prints a table and writes ``bench/results/vectors.json``.

    .venv/bin/python bench/vectors.py [--sizes 100000 1000000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from raydo.actors.placement import load_ray
from raydo.bindings.vectorize import VectorizeIndex
from raydo.gateway.cli_vectorize import open_index
from raydo.gateway.config import load_config

DIMENSIONS = 384
NAMESPACES = 10
CATEGORIES = 20
BATCH = 1000
TOP_K = 10
RESULTS = Path(__file__).resolve().parent / "results" / "vectors.json"

APP = """
from starlette.applications import Starlette

app = Starlette()
"""


def clustered(n: int, clusters: int, seed: int) -> tuple[np.ndarray[Any, Any], Any]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIMENSIONS)).astype(np.float32)
    data = centres[rng.integers(0, clusters, n)]
    data += 0.35 * rng.standard_normal((n, DIMENSIONS)).astype(np.float32)
    return data, centres


def queries(centres: Any, count: int, seed: int) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    picked = centres[rng.integers(0, len(centres), count)]
    out: np.ndarray[Any, Any] = picked + 0.35 * rng.standard_normal(picked.shape).astype(np.float32)
    return out


def exact_top(normed: Any, q: Any, rows: Any | None = None) -> list[int]:
    """The ids (row numbers) of the 10 closest by cosine, among ``rows`` when given."""
    qn = q / np.linalg.norm(q)
    if rows is None:
        scores = normed @ qn
        top = np.argpartition(-scores, TOP_K)[:TOP_K]
        return [int(i) for i in top[np.argsort(-scores[top])]]
    scores = normed[rows] @ qn
    top = np.argpartition(-scores, TOP_K)[:TOP_K]
    return [int(rows[i]) for i in top[np.argsort(-scores[top])]]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "qps": len(seconds) / float(np.sum(seconds)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


async def timed_queries(
    index: VectorizeIndex, qs: Any, truth: list[list[int]], **options: Any
) -> dict[str, float]:
    seconds: list[float] = []
    hits = 0
    for q, expected in zip(qs, truth, strict=True):
        started = time.perf_counter()
        found = await index.query(q, top_k=TOP_K, **options)
        seconds.append(time.perf_counter() - started)
        hits += len({int(m.id) for m in found.matches} & set(expected))
    return {**percentiles(seconds), "recall_at_10": hits / (TOP_K * len(qs))}


def write_app(folder: Path) -> None:
    (folder / "app.py").write_text(APP)
    (folder / "raydo.toml").write_text(
        'name = "vectors-bench"\nmain = "app:app"\n\n[[vectorize]]\nbinding = "VECTORS"\n'
        f'index_name = "bench"\ndimensions = {DIMENSIONS}\nmetric = "cosine"\n'
    )


async def run_size(n: int, clusters: int, count: int, folder: Path) -> dict[str, Any]:
    data, centres = clustered(n, clusters, seed=n)
    qs = queries(centres, count, seed=n + 1)
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    namespace_rows = np.arange(3, n, NAMESPACES)
    category_rows = np.arange(3, n, CATEGORIES)
    truth = [exact_top(normed, q) for q in qs]
    truth_ns = [exact_top(normed, q, namespace_rows) for q in qs]
    truth_cat = [exact_top(normed, q, category_rows) for q in qs]
    result: dict[str, Any] = {"vectors": n, "dimensions": DIMENSIONS, "clusters": clusters}

    config = load_config(folder)
    async with open_index(config, "bench") as index:
        await index.create_metadata_index("cat", "number")
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            await index.upsert(
                [
                    {
                        "id": str(i),
                        "values": data[i],
                        "namespace": f"ns{i % NAMESPACES}",
                        "metadata": {"cat": i % CATEGORIES},
                    }
                    for i in range(start, min(n, start + BATCH))
                ]
            )
        insert_s = time.perf_counter() - started
        (shard,) = await index.shard_status()
        result["insert"] = {"seconds": insert_s, "vectors_per_s": n / insert_s}
        result["memory_bytes_per_vector"] = shard["memory_bytes"] / n
        result["graph_saves"] = shard["graph_saves"]
    async with open_index(config, "bench") as index:
        started = time.perf_counter()
        await index.query(qs[0], top_k=TOP_K)
        (shard,) = await index.shard_status()
        result["load"] = {
            "seconds_to_first_answer": time.perf_counter() - started,
            "file_seconds": shard["load_seconds"],
            "graph_seconds": shard["graph_seconds"],
            "graph_source": shard["graph_source"],
        }
        for q in qs[:50]:  # warm-up
            await index.query(q, top_k=TOP_K)
        result["binding"] = await timed_queries(index, qs, truth)
        result["binding_namespace"] = await timed_queries(index, qs, truth_ns, namespace="ns3")
        result["binding_filter"] = await timed_queries(index, qs, truth_cat, filter={"cat": 3})

    seconds = []
    for q in qs:
        started = time.perf_counter()
        exact_top(normed, q)
        seconds.append(time.perf_counter() - started)
    result["numpy_exact"] = percentiles(seconds)

    result["usearch"] = raw_usearch(data, qs, truth, "f32")
    result["usearch_i8"] = raw_usearch(data, qs, truth, "i8")
    result["binding_share_of_usearch_qps"] = result["binding"]["qps"] / result["usearch"]["qps"]
    result["binding_share_of_usearch_i8_qps"] = (
        result["binding"]["qps"] / result["usearch_i8"]["qps"]
    )
    return result


def raw_usearch(data: Any, qs: Any, truth: list[list[int]], dtype: str) -> dict[str, Any]:
    """usearch called directly with the binding's graph parameters, holding ``dtype``: one
    query at a time, 10 results each, no re-scoring."""
    load_ray()  # before usearch (see load_ray)
    from usearch.index import Index

    started = time.perf_counter()
    raw = Index(
        ndim=DIMENSIONS,
        metric="cos",
        dtype=dtype,
        connectivity=16,
        expansion_add=128,
        expansion_search=128,
    )
    raw.add(np.arange(len(data), dtype=np.uint64), data)
    build_s = time.perf_counter() - started
    seconds = []
    hits = 0
    for q, expected in zip(qs, truth, strict=True):
        started = time.perf_counter()
        found = raw.search(q, TOP_K)
        seconds.append(time.perf_counter() - started)
        hits += len({int(k) for k in found.keys} & set(expected))
    return {
        **percentiles(seconds),
        "recall_at_10": hits / (TOP_K * len(qs)),
        "build_seconds": build_s,
    }


def show(result: dict[str, Any]) -> None:
    n = result["vectors"]
    print(
        f"\n{n:,} x {DIMENSIONS}: insert {result['insert']['vectors_per_s']:,.0f} vectors/s,"
        f" {result['memory_bytes_per_vector']:,.0f} B/vector, the graph saved"
        f" {result['graph_saves']} times; restart to first answer"
        f" {result['load']['seconds_to_first_answer']:.1f} s (file and saved graph"
        f" {result['load']['file_seconds']:.1f} s, graph {result['load']['graph_source']})"
    )
    print(f"{'search':<22}{'q/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'recall@10':>11}")
    keys = (
        "binding",
        "binding_namespace",
        "binding_filter",
        "numpy_exact",
        "usearch",
        "usearch_i8",
    )
    for key in keys:
        row = result[key]
        recall = f"{row['recall_at_10']:.3f}" if "recall_at_10" in row else "1 (exact)"
        print(f"{key:<22}{row['qps']:>9,.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{recall:>11}")
    print(
        f"binding / usearch q/s: {result['binding_share_of_usearch_qps']:.2f} (f32 graph),"
        f" {result['binding_share_of_usearch_i8_qps']:.2f} (i8 graph, as the binding's)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=1000)
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="raydo-vectors-") as tmp:
            folder = Path(tmp)
            write_app(folder)
            result = asyncio.run(run_size(n, args.clusters, args.queries, folder))
        show(result)
        results.append(result)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
                "python": platform.python_version(),
                "command": "bench/vectors.py --sizes "
                + " ".join(map(str, args.sizes))
                + f" --queries {args.queries}",
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
