"""What the vector graph holds, float32 or bytes: one shard's table (``VectorTable``, the
code every query of the binding runs, without the RPC around it) built twice over the same
vectors in the same run, once with a float32 graph and once with an ``i8`` graph (what a
cosine index's graph holds, ``GRAPH_DTYPE`` in ``raydo/bindings/vectorize/_search.py``).

Per size (``--sizes``; ``bench/vectors.py``'s clustered data, 384 dimensions, cosine): the
graph's build seconds and the table's memory per vector, then ``--rounds`` rounds of the
same ``--queries`` queries (``top_k=10``) against each table in turn: microseconds per
query and recall@10 against exact search. Both tables re-score the graph's candidates
exactly from their float32 matrix, so the scores are the same; only the candidates differ.

Prints a table and writes ``bench/results/vector_graphs.json``.

    .venv/bin/python bench/vector_graphs.py [--sizes 100000 1000000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from vectors import DIMENSIONS, TOP_K, clustered, exact_top, queries

from raydo.bindings.vectorize import VectorTable

RESULTS = Path(__file__).resolve().parent / "results" / "vector_graphs.json"
KINDS = ("f32", "i8")


def build(data: Any, kind: str) -> tuple[VectorTable, float]:
    """A cosine table holding ``data``, its graph holding ``kind``; and the graph's build
    seconds."""
    table = VectorTable(DIMENSIONS, "cosine", graph_dtype=kind)
    table.put_many([str(i) for i in range(len(data))], data, [""] * len(data))
    started = time.perf_counter()
    table.ensure_graph()
    assert table.graph_kind == kind
    return table, time.perf_counter() - started


def run_size(n: int, clusters: int, count: int, rounds: int) -> dict[str, Any]:
    data, centres = clustered(n, clusters, seed=n)
    qs = queries(centres, count, seed=n + 1)
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    truth = [set(exact_top(normed, q)) for q in qs]
    del normed
    result: dict[str, Any] = {"vectors": n, "dimensions": DIMENSIONS, "clusters": clusters}
    tables = {}
    for kind in KINDS:
        table, seconds = build(data, kind)
        tables[kind] = table
        result[kind] = {
            "build_seconds": seconds,
            "memory_bytes_per_vector": table.memory_bytes() / n,
            "us_per_query": [],
        }
    for _ in range(rounds):  # alternating, so that both see the same machine
        for kind, table in tables.items():
            hits = 0
            started = time.perf_counter()
            for q, expected in zip(qs, truth, strict=True):
                hits += len({row for row, _ in table.search(q, TOP_K, None)} & expected)
            result[kind]["us_per_query"].append((time.perf_counter() - started) / count * 1e6)
            result[kind]["recall_at_10"] = hits / (TOP_K * count)
    for kind in KINDS:
        result[kind]["us_per_query_median"] = float(np.median(result[kind]["us_per_query"]))
    result["i8_speedup"] = (
        result["f32"]["us_per_query_median"] / result["i8"]["us_per_query_median"]
    )
    return result


def show(result: dict[str, Any]) -> None:
    print(f"\n{result['vectors']:,} x {DIMENSIONS}, cosine")
    print(f"{'graph':<7}{'build s':>9}{'B/vector':>10}{'us/query':>10}{'recall@10':>11}  rounds")
    for kind in KINDS:
        row = result[kind]
        rounds = " ".join(f"{us:.0f}" for us in row["us_per_query"])
        print(
            f"{kind:<7}{row['build_seconds']:>9.1f}{row['memory_bytes_per_vector']:>10,.0f}"
            f"{row['us_per_query_median']:>10.0f}{row['recall_at_10']:>11.3f}  {rounds}"
        )
    print(f"i8 answers {result['i8_speedup']:.2f}x as many queries per second as f32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        result = run_size(n, args.clusters, args.queries, args.rounds)
        show(result)
        results.append(result)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
                "python": platform.python_version(),
                "load_average": os.getloadavg(),
                "command": "bench/vector_graphs.py --sizes "
                + " ".join(map(str, args.sizes))
                + f" --queries {args.queries} --rounds {args.rounds}",
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
