"""Memory of idle WebSockets: 10,000 sockets over 100 rooms, every room object evicted.

Starts ``raydo dev bench/apps/idle`` (rooms evicted after 2 s idle), measures the gateway
process's unique memory (USS), opens the sockets from this process, waits until every room has
been evicted, measures again, checks that sockets still answer (the room wakes up), and
prints the gateway's memory per idle socket. Writes ``bench/results/ws_idle.json``.

    .venv/bin/python bench/ws_idle.py [--sockets 10000] [--rooms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import websockets
from servers import REPO, DevServer

KiB = 1024


def uss(pid: int) -> int:
    return int(psutil.Process(pid).memory_full_info().uss)


async def measure(url: str, pid: int, sockets: int, rooms: int) -> dict[str, Any]:
    ws_url = url.replace("http", "ws") + "/room/r"
    # Warm the gateway and one host per shard first, so start-up is not counted per socket.
    async with websockets.connect(f"{ws_url}warm") as warm:
        await warm.send("hi")
        await warm.recv()
    await asyncio.sleep(3)
    before = uss(pid)
    clients: list[Any] = []
    started = time.perf_counter()
    for start in range(0, sockets, 200):
        batch = [
            websockets.connect(f"{ws_url}{i % rooms}", ping_interval=None, max_queue=4)
            for i in range(start, min(sockets, start + 200))
        ]
        clients += await asyncio.gather(*batch)
    opened = time.perf_counter() - started
    await asyncio.sleep(7)  # every room idle for 2 s is evicted by now
    after = uss(pid)
    # They still answer: a message wakes the room again (its constructor count grows).
    sample = random.sample(clients, 20)
    for ws in sample:
        await ws.send("ping")
    replies = [await asyncio.wait_for(ws.recv(), 30) for ws in sample]
    for ws in clients:
        await ws.close()
    return {
        "sockets": sockets,
        "rooms": rooms,
        "open_seconds": opened,
        "gateway_uss_before_mib": before / 2**20,
        "gateway_uss_after_mib": after / 2**20,
        "gateway_bytes_per_socket": (after - before) / sockets,
        "sample_replies": len([r for r in replies if r.startswith("ping")]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--rooms", type=int, default=100)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * args.sockets))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # inherited by the server
    with tempfile.TemporaryDirectory(prefix="raydo-idle-bench-") as tmp:
        server = DevServer(REPO / "bench" / "apps" / "idle", Path(tmp)).wait("/nothing")
        try:
            result = asyncio.run(measure(server.url, server.proc.pid, args.sockets, args.rooms))
        finally:
            server.stop()
    per = result["gateway_bytes_per_socket"] / KiB
    print(
        f"\n{args.sockets:,} idle WebSockets over {args.rooms} rooms, every room evicted,"
        f" {platform.node()}, {os.cpu_count()} cores\n"
    )
    print("| gateway USS before | after | per idle socket | sockets answering after eviction |")
    print("|---:|---:|---:|---:|")
    before, after = result["gateway_uss_before_mib"], result["gateway_uss_after_mib"]
    print(f"| {before:.1f} MiB | {after:.1f} MiB | {per:.1f} KiB | {result['sample_replies']}/20 |")
    out = REPO / "bench" / "results" / "ws_idle.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
