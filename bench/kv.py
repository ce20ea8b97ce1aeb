"""Key-value reads served from the gateway process's cache beside reads served by the
namespace's object, in one run on ``raydo dev`` (embedded local Ray, the object in a Ray host).

Two namespaces of ``bench/apps/kv`` hold the same 1,000 keys of 100 bytes: ``CACHED`` (the
default 60 s cache) and ``DIRECT`` (``cache_bytes = 0``: every read asks the object). Per
round and namespace:

* **binding**: ``--reads`` ``get`` calls on random keys, 32 at a time, in a loop inside the
  gateway process (no HTTP): what the binding itself costs;
* **HTTP**: ``wrk -t1 -c32`` for ``--seconds`` on ``GET /kv/<ns>/k<random>``: what an app's
  request that reads one key costs end to end.

Then, once per round, ``--reads / 5`` ``put`` calls, 32 at a time, in the same loop.

Prints a table with the ratio cached / direct and writes ``bench/results/kv.json``.

    .venv/bin/python bench/kv.py [--seconds 10] [--reads 50000] [--rounds 2]

With ``--in-process``, instead: cache misses (``DIRECT``) with the namespace's object in
this process (``gateway.testing.start_app``, in-process hosts), one ``get`` at a time and
``--concurrency`` in flight, beside a point read of the same 1,000 keys done directly with
``sqlite3`` (WAL, ``synchronous=NORMAL``) in the same run, for ``--seconds`` each, and, with
``--old REV``, the same misses on raydo at git revision ``REV`` (``bench/old_tree.py``). The
misses run on uvloop, the loop raydo serves with (``--loop asyncio`` for the standard one).
Writes ``bench/results/kv_in_process.json``.

    .venv/bin/python bench/kv.py --in-process [--seconds 3] [--rounds 2] [--old REV]
        [--loop uvloop|asyncio]

Needs ``wrk`` on the PATH (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import httpx
from counter_http import CONNECTIONS, wrk  # the counter benchmark's wrk run and parsing
from d1 import LOOPS, measure, measure_sync, run_on_loop  # rates, CPU per operation, loops
from old_tree import exported, run_child
from servers import REPO, DevServer

CONCURRENCY = 32
NAMESPACES = ("CACHED", "DIRECT")
LUA = """
request = function()
  return wrk.format(nil, "/kv/{ns}/k" .. math.random(0, 999))
end
"""


def binding_loop(url: str, ns: str, reads: int, op: str = "get") -> dict[str, float]:
    reply = httpx.get(
        f"{url}/loop/{ns}",
        params={"reads": reads, "concurrency": CONCURRENCY, "op": op},
        timeout=600,
    ).json()
    return {"reads_per_s": reply["reads"] / reply["seconds"], "missing": reply["missing"]}


async def miss_rates(seconds: float, concurrency: int) -> dict[str, tuple[float, float]]:
    """Cache misses through ``env.DIRECT`` with in-process hosts: rate and CPU µs per get."""
    from raydo.gateway.testing import start_app

    rates: dict[str, tuple[float, float]] = {}
    async with start_app(REPO / "bench" / "apps" / "kv") as app:
        kv = app.env.DIRECT
        await asyncio.gather(*(kv.put(f"k{n}", "v" * 100) for n in range(1000)))

        async def get(i: int) -> None:
            assert await kv.get(f"k{random.randrange(1000)}") is not None

        for label, inflight in (("sequential", 1), (f"{concurrency} in flight", concurrency)):
            await measure(get, 0.5, inflight)  # warm-up
            rates[f"misses, {label}"] = await measure(get, seconds, inflight)
    return rates


def sqlite_rate(folder: Path, seconds: float) -> tuple[float, float]:
    """A point read of a 100-byte value by key, directly with sqlite3."""
    conn = sqlite3.connect(folder / "direct.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)")
    conn.executemany(
        "INSERT OR REPLACE INTO kv VALUES (?, ?)", [(b"k%d" % n, b"v" * 100) for n in range(1000)]
    )

    def read(i: int) -> None:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (b"k%d" % random.randrange(1000),))
        assert row.fetchone() is not None

    measure_sync(read, 0.5)
    try:
        return measure_sync(read, seconds)
    finally:
        conn.close()


async def in_process(args: argparse.Namespace) -> None:
    if args.child:  # the old tree's misses, for --old
        print(json.dumps(await miss_rates(args.seconds, args.concurrency)))
        return
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        old = None if args.old is None else stack.enter_context(exported(args.old))
        child = ["--in-process", "--child", "--seconds", str(args.seconds), "--loop", args.loop]
        for n in range(1, args.rounds + 1):
            rate, cpu = sqlite_rate(Path(tmp), args.seconds)
            rows.append({"round": n, "target": "sqlite3", "op": "point read", "per_s": rate,
                         "cpu_us": cpu})  # fmt: skip
            targets: list[tuple[str, dict[str, Any]]] = [
                ("env.DIRECT, in-process host", await miss_rates(args.seconds, args.concurrency))
            ]
            if old is not None:
                targets.append((f"env.DIRECT, in-process, {args.old}",
                                run_child(old, Path(__file__), child)))  # fmt: skip
            for target, rates in targets:
                for op, (got, used) in rates.items():
                    rows.append({"round": n, "target": target, "op": op, "per_s": got,
                                 "cpu_us": used, "ratio_to_sqlite3": got / rate})  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f}; CPU µs/op is this process's\n")
    print(f"{'round':>5}  {'target':<32} {'operation':<22} {'per s':>10}  ratio {'CPU µs/op':>10}")
    for row in rows:
        ratio = f"{row['ratio_to_sqlite3']:.3f}" if "ratio_to_sqlite3" in row else ""
        print(
            f"{row['round']:>5}  {row['target']:<32} {row['op']:<22}"
            f" {row['per_s']:>10,.0f}  {ratio:<5} {row['cpu_us']:>10.1f}"
        )
    out = REPO / "bench" / "results" / "kv_in_process.json"
    out.write_text(
        json.dumps(
            {"machine": {"node": platform.node(), "cores": os.cpu_count()}, "old": args.old,
             "loop": args.loop,
             "seconds": args.seconds, "concurrency": args.concurrency,
             "load_average": os.getloadavg(), "rows": rows},
            indent=2,
        ) + "\n"
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--reads", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--in-process", action="store_true", help="misses in process only")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--old", help="with --in-process: also at this git revision")
    parser.add_argument("--loop", choices=LOOPS, default="uvloop", help="with --in-process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        run_on_loop(in_process(args), args.loop)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="raydo-bench-") as tmp:
        workdir = Path(tmp)
        scripts = {ns: workdir / f"{ns}.lua" for ns in NAMESPACES}
        for ns, script in scripts.items():
            script.write_text(LUA.replace("{ns}", ns))
        server = DevServer(REPO / "bench" / "apps" / "kv", workdir).wait("/kv/CACHED/k0")
        try:
            httpx.post(server.url + "/seed", timeout=120).raise_for_status()
            for ns in NAMESPACES:  # warm-up: the caches fill, the object's pages are hot
                binding_loop(server.url, ns, 5000)
                wrk(server.url, scripts[ns], 2)
            for _ in range(args.rounds):
                result: dict[str, Any] = {}
                for ns in NAMESPACES:
                    result[ns] = {
                        "binding": binding_loop(server.url, ns, args.reads),
                        "http": wrk(server.url, scripts[ns], args.seconds),
                    }
                # Writes cost the same in both namespaces: each is one event of the object.
                result["writes"] = binding_loop(server.url, "DIRECT", args.reads // 5, "put")
                rounds.append(result)
        finally:
            server.stop()

    print(
        f"\nkey-value reads, 1,000 keys of 100 bytes, {platform.node()},"
        f" {os.cpu_count()} cores, {platform.python_version()}\n"
    )
    print("| round | served by | binding reads/s | HTTP requests/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---:|---:|---:|---:|---:|")
    ratios = []
    for n, result in enumerate(rounds, start=1):
        for ns, label in (("CACHED", "process cache"), ("DIRECT", "the object")):
            row = result[ns]
            print(
                f"| {n} | {label} | {row['binding']['reads_per_s']:,.0f} |"
                f" {row['http']['rps']:,.0f} | {row['http']['p50_ms']:.2f} |"
                f" {row['http']['p99_ms']:.2f} | {row['http']['non_2xx']:.0f} |"
            )
        ratio = {
            part: result["CACHED"][part][key] / result["DIRECT"][part][key]
            for part, key in (("binding", "reads_per_s"), ("http", "rps"))
        }
        ratios.append(ratio)
        print(f"| {n} | cache / object | {ratio['binding']:.1f} | {ratio['http']:.2f} | | | |")
        print(f"| {n} | writes (`put`) | {result['writes']['reads_per_s']:,.0f} | | | | |")
    out = REPO / "bench" / "results" / "kv.json"
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "node": platform.node(),
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                },
                "keys": 1000,
                "value_bytes": 100,
                "concurrency": CONCURRENCY,
                "wrk_connections": CONNECTIONS,
                "seconds": args.seconds,
                "reads": args.reads,
                "rounds": rounds,
                "ratios": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
