"""The Python Workers SDK's cost: the same two routes served by a raydo-native app
(Starlette handler, ``raydo.DurableObject``) and by a Python Worker (``Default(WorkerEntrypoint)``,
``workers.DurableObject``), each on ``raydo dev --in-process`` (no Ray: what is measured is
the SDK's layer, not the wire).

Routes: ``GET /hello`` (a short text, no object) and ``POST /counter/one/increment`` (an RPC
to one object that reads and writes its storage). ``wrk -t1`` for ``--seconds`` per route,
the two apps interleaved in each of ``--rounds`` rounds. Prints a table with the Worker /
native ratio and writes ``bench/results/workers_sdk.json``.

    .venv/bin/python bench/workers_sdk.py [--seconds 10] [--rounds 2]

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

from counter_http import CONNECTIONS, wrk  # the counter benchmark's wrk run and parsing
from servers import REPO, DevServer

APPS = {"native": "workers_native", "worker": "workers_sdk"}
ROUTES = {
    "GET /hello": 'request = function()\n  return wrk.format("GET", "/hello")\nend\n',
    "POST increment": (
        'request = function()\n  return wrk.format("POST", "/counter/one/increment")\nend\n'
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="raydo-bench-") as tmp:
        workdir = Path(tmp)
        scripts = {}
        for label, text in ROUTES.items():
            scripts[label] = workdir / f"{len(scripts)}.lua"
            scripts[label].write_text(text)
        servers = {
            kind: DevServer(REPO / "bench" / "apps" / folder, workdir, in_process=True)
            for kind, folder in APPS.items()
        }
        try:
            for server in servers.values():
                server.wait("/hello")
                for script in scripts.values():  # warm-up
                    wrk(server.url, script, 2)
            for _ in range(args.rounds):
                result: dict[str, dict[str, Any]] = {}
                for label, script in scripts.items():
                    for kind, server in servers.items():
                        result[f"{label} {kind}"] = wrk(server.url, script, args.seconds)
                rounds.append(result)
        finally:
            for server in servers.values():
                server.stop()

    print(
        f"\nPython Workers SDK beside raydo-native, raydo dev --in-process, {platform.node()},"
        f" {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {platform.python_version()}\n"
    )
    print("| round | route | native req/s | worker req/s | worker / native | p50 ms n / w |")
    print("|---|---|---:|---:|---:|---:|")
    for n, result in enumerate(rounds, start=1):
        for label in ROUTES:
            native, worker = result[f"{label} native"], result[f"{label} worker"]
            print(
                f"| {n} | {label} | {native['rps']:,.0f} | {worker['rps']:,.0f} |"
                f" {worker['rps'] / native['rps']:.2f} |"
                f" {native['p50_ms']:.2f} / {worker['p50_ms']:.2f} |"
            )
    out = REPO / "bench" / "results" / "workers_sdk.json"
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "node": platform.node(),
                    "cores": os.cpu_count(),
                    "load": os.getloadavg()[0],
                    "python": platform.python_version(),
                },
                "wrk_connections": CONNECTIONS,
                "seconds": args.seconds,
                "rounds": rounds,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
