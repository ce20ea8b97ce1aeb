"""Touch many distinct objects through the gateway; memory and open files must stay bounded.

Starts the counter example on ``raydo dev`` (embedded Ray) with ``max_live_objects`` and
``idle_timeout_s`` lowered, increments ``--objects`` distinct counters through HTTP (64 at a
time), and every ``--every`` objects samples each host process's memory (USS) and open file
count. Memory and files must follow the live bound, not the number of objects ever touched.
Writes ``bench/results/scale_objects.json``.

    .venv/bin/python bench/scale_objects.py [--objects 100000] [--every 10000]
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

import httpx
import psutil
from servers import REPO, DevServer


def host_processes(root_pid: int) -> list[psutil.Process]:
    hosts = []
    for proc in psutil.Process(root_pid).children(recursive=True):
        try:
            if "HostActor" in " ".join(proc.cmdline()) or proc.name().startswith("ray::HostActor"):
                hosts.append(proc)
        except psutil.NoSuchProcess:
            continue
    return hosts


def sample(root_pid: int) -> dict[str, Any]:
    hosts = host_processes(root_pid)
    uss = sum(p.memory_full_info().uss for p in hosts)
    files = sum(len(p.open_files()) for p in hosts)
    return {"hosts": len(hosts), "hosts_uss_mib": uss / 2**20, "open_files": files}


async def run(url: str, pid: int, objects: int, every: int) -> list[dict[str, Any]]:
    rows = []
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        for start in range(0, objects, 64):
            replies = await asyncio.gather(
                *(
                    client.post(f"/counter/o{i}/increment")
                    for i in range(start, min(objects, start + 64))
                )
            )
            assert all(r.status_code == 200 for r in replies), replies[0].text
            done = min(objects, start + 64)
            if done % every < 64 or done == objects:
                row = {"touched": done, "seconds": time.perf_counter() - started, **sample(pid)}
                rows.append(row)
                print(
                    f"{done:>8,} objects  {row['seconds']:6.1f} s  hosts USS"
                    f" {row['hosts_uss_mib']:7.1f} MiB  open files {row['open_files']}",
                    flush=True,
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--live", type=int, default=2_000, help="max_live_objects per host")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raydo-scale-") as tmp:
        app = Path(tmp) / "counter"
        server = DevServer(REPO / "examples" / "counter", Path(tmp))
        toml = server.copy / "raydo.toml"
        toml.write_text(toml.read_text() + f"max_live_objects = {args.live}\nidle_timeout_s = 5\n")
        server.wait()
        try:
            rows = asyncio.run(run(server.url, server.proc.pid, args.objects, args.every))
        finally:
            server.stop()
        del app
    out = REPO / "bench" / "results" / "scale_objects.json"
    out.write_text(
        json.dumps(
            {
                "machine": {"node": platform.node(), "cores": os.cpu_count()},
                "max_live_objects_per_host": args.live,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
