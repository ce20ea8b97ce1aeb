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

Needs ``wrk`` on the PATH (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
from counter_http import CONNECTIONS, wrk  # the counter benchmark's wrk run and parsing
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--reads", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
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
