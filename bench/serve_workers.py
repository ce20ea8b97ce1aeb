"""``raydo serve`` with one gateway process and with two, on one Ray cluster, in one run.

A Ray head started for the run (``ray start --head --block`` on 127.0.0.1, a temp dir of its
own), then, alternating for ``--rounds``: ``raydo serve`` on a copy of the counter example
(fresh storage, its binding's 2 hosts spread as Ray places them) with ``--workers 1`` and
with ``--workers 2``; for each, ``wrk`` with 32 connections for ``--seconds`` after a warm-up,
on one object and spread uniformly over 1,000 objects (created beforehand). Per row:
requests/s, p50 and p99, and the CPU per request of every process that serves it (the
gateway workers, the hosts and Ray's own: the trees of ``raydo serve`` and of the head), so
that a row slowed by other work on this shared machine shows as such. Writes
``bench/results/serve_workers.json``.

    .venv/bin/python bench/serve_workers.py [--seconds 10] [--rounds 2]

Needs ``wrk`` on the PATH (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from counter_http import (
    BIN,
    MANY_OBJECTS_LUA,
    OBJECTS,
    ONE_OBJECT_LUA,
    REPO,
    create_objects,
    free_port,
    stop,
    wait_ready,
    wrk_rows,
)

RESULTS = REPO / "bench" / "results" / "serve_workers.json"


def start_head(port: int, temp_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """A Ray head of this run's own, once ``ray start --block`` says it blocks."""
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--port",
            str(port),
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--block",
            f"--temp-dir={temp_dir}",
            "--node-ip-address=127.0.0.1",
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while "--block" not in log.read_text():
        if head.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"ray start failed:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    return head


def stop_head(head: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the head's session (its own cleanup stops Ray's processes), then SIGKILL."""
    os.killpg(head.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)  # anything of the session left behind
    head.wait()


def measure(
    workers: int, address: str, head_pid: int, workdir: Path, seconds: int, scripts: dict[str, Path]
) -> dict[str, dict[str, float]]:
    app = workdir / f"counter-{workers}"
    shutil.rmtree(app, ignore_errors=True)
    shutil.copytree(
        REPO / "examples" / "counter", app, ignore=shutil.ignore_patterns(".raydo", "__pycache__")
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "raydo"),
            "serve",
            str(app),
            "--address",
            address,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        asyncio.run(create_objects(url))
        # The head's tree holds the hosts (Ray workers) and Ray's own processes.
        return wrk_rows(url, scripts, seconds, {"gateway": proc.pid, "hosts": head_pid})
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the targets this often")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    counts = (1, 2)
    with tempfile.TemporaryDirectory(prefix="raydo-bench-workers-") as tmp:
        workdir = Path(tmp)
        scripts = {"one object": workdir / "one.lua", f"{OBJECTS} objects": workdir / "many.lua"}
        scripts["one object"].write_text(ONE_OBJECT_LUA)
        scripts[f"{OBJECTS} objects"].write_text(MANY_OBJECTS_LUA)
        port = free_port()
        head = start_head(port, Path(f"/tmp/raydo-bench-{port}"), workdir / "ray.log")
        rounds: list[dict[int, dict[str, dict[str, float]]]] = []
        try:
            for _ in range(args.rounds):
                rounds.append(
                    {
                        n: measure(n, f"127.0.0.1:{port}", head.pid, workdir, args.seconds, scripts)
                        for n in counts
                    }
                )
        finally:
            stop_head(head)
            shutil.rmtree(f"/tmp/raydo-bench-{port}", ignore_errors=True)

    print(
        f"\nraydo serve --workers 1 and 2, counter increments, wrk -t1 -c32 -d{args.seconds}s,"
        f" {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print(
        "| pattern | round | workers | requests/s | p50 ms | p99 ms"
        " | CPU µs/req (gateways + hosts and Ray) | load | 2 / 1 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows: list[dict[str, Any]] = []
    for pattern in scripts:
        for number, result in enumerate(rounds, 1):
            ratio = result[2][pattern]["rps"] / result[1][pattern]["rps"]
            for n in counts:
                row = result[n][pattern]
                shown = f"{ratio:.2f}" if n == 2 else ""
                print(
                    f"| {pattern} | {number} | {n} | {row['rps']:,.0f} | {row['p50_ms']:.2f} |"
                    f" {row['p99_ms']:.2f} | {row['cpu_us_per_req']:.0f}"
                    f" ({row['gateway_cpu_us_per_req']:.0f} + {row['hosts_cpu_us_per_req']:.0f}) |"
                    f" {row['load_average']:.1f} | {shown} |"
                )
                rows.append({"pattern": pattern, "round": number, "workers": n, **row})
    RESULTS.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
                "python": platform.python_version(),
                "command": f"bench/serve_workers.py --seconds {args.seconds}"
                f" --rounds {args.rounds}",
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
