"""Where a narrowed vector query should stop scanning exactly and ask the graph: the
measurement behind ``EXACT_BELOW`` in ``raydo/bindings/vectorize/_search.py``.

One shard's table (``VectorTable``, the code a query of the binding runs, without the RPC
around it) over ``--vectors`` of ``bench/vectors.py``'s clustered data (384 dimensions,
cosine, the ``i8`` graph a cosine shard builds), with namespaces of 2,500 to 40,000 rows.
For each namespace the same ``--queries`` queries (``top_k=10``, ``namespace=``) run the two
ways the table can answer them, alternating for ``--rounds``: an exact scan of the
namespace's rows (its threshold set just above the namespace's size; the scan reads the
namespace's contiguous block) and the graph (the threshold at the namespace's size: the
graph is asked for proportionally more candidates and its answer kept to the namespace).
Prints microseconds per query (median of the rounds) and the graph's recall@10 against the
exact answers, and writes ``bench/results/exact_crossover.json``.

    .venv/bin/python bench/exact_crossover.py [--vectors 100000] [--queries 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from vectors import DIMENSIONS, TOP_K, clustered, queries

from raydo.bindings.vectorize import VectorTable

RESULTS = Path(__file__).resolve().parent / "results" / "exact_crossover.json"
SIZES = (2_500, 5_000, 10_000, 20_000, 40_000)


def timed(table: VectorTable, qs: Any, namespace: str) -> tuple[float, list[list[int]]]:
    """Microseconds per query of ``qs`` in ``namespace``, and each query's rows."""
    mask = table.namespace_mask(namespace)
    found = []
    started = time.perf_counter()
    for q in qs:
        found.append([row for row, _ in table.search(q, TOP_K, mask, namespace=namespace)])
    return (time.perf_counter() - started) * 1e6 / len(qs), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [m for m in SIZES if m < args.vectors]
    if sum(sizes) > args.vectors:
        raise SystemExit(f"--vectors must be at least {sum(sizes)} for namespaces of {sizes}")
    data, centres = clustered(args.vectors, 1_000, seed=args.vectors)
    names = [""] * args.vectors
    start = 0
    for m in sizes:
        names[start : start + m] = [f"n{m}"] * m
        start += m
    table = VectorTable(DIMENSIONS, "cosine", exact_below=min(sizes))
    table.put_many([str(i) for i in range(args.vectors)], data, names)
    started = time.perf_counter()
    table.ensure_graph()
    build_s = time.perf_counter() - started
    qs = queries(centres, args.queries, seed=args.vectors + 1)
    rows = []
    for m in sizes:
        namespace = f"n{m}"
        exact_us: list[float] = []
        graph_us: list[float] = []
        recall = 0.0
        for _ in range(args.rounds):
            table.exact_below = m + 1  # fewer candidates than the threshold: an exact scan
            us, truth = timed(table, qs, namespace)
            exact_us.append(us)
            table.exact_below = m  # as many as the threshold: the graph
            us, got = timed(table, qs, namespace)
            graph_us.append(us)
            hits = sum(len(set(g) & set(t)) for g, t in zip(got, truth, strict=True))
            recall = hits / sum(len(t) for t in truth)
        rows.append(
            {
                "namespace_rows": m,
                "exact_us": statistics.median(exact_us),
                "graph_us": statistics.median(graph_us),
                "graph_recall_at_10": recall,
            }
        )
    print(
        f"{args.vectors:,} vectors, {DIMENSIONS} dimensions, cosine, i8 graph built in"
        f" {build_s:.1f} s; {args.queries} queries x {args.rounds} rounds, top_k={TOP_K}"
    )
    print("| namespace rows | exact scan µs | graph µs | exact / graph | graph recall@10 |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['namespace_rows']:,} | {row['exact_us']:,.0f} | {row['graph_us']:,.0f} |"
            f" {row['exact_us'] / row['graph_us']:.2f} | {row['graph_recall_at_10']:.3f} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "vectors": args.vectors,
                "graph_build_seconds": build_s,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
