"""Broadcast latency in one chat room: 100 receivers and one sender, over real WebSockets.

The chat example (``examples/chat``) on ``raydo dev``, with its rooms in Ray hosts, beside the
same app with in-process hosts (``--in-process``), in one run. For each: one sender at 20 and
then 100 messages/s for ``--seconds`` each, timing every delivery to each of the 100
receivers (send to receive, one clock: all clients live in this process); then a closed loop
with 16 broadcasts in flight for the highest sustained fan-out. Prints p50/p99 and
deliveries/s; writes ``bench/results/ws_broadcast.json``.

    .venv/bin/python bench/ws_broadcast.py [--seconds 10] [--receivers 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets
from servers import REPO, DevServer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_target(
    url: str,
    receivers: int,
    seconds: float,
    *,
    rates: tuple[int, ...] = (20, 100),
    closed_loop: bool = True,
) -> dict[str, Any]:
    """Join ``receivers`` and one sender to one room of the chat app at ``url``; one row per
    fixed send rate in ``rates`` (messages/s, ``seconds`` each), then, with ``closed_loop``,
    16 broadcasts kept in flight for ``seconds``."""
    ws_url = url.replace("http", "ws") + "/room/bench/ws?name="
    clients = [await websockets.connect(f"{ws_url}r{i}", max_queue=None) for i in range(receivers)]
    sender = await websockets.connect(f"{ws_url}sender", max_queue=None)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    received: dict[int, int] = {}
    completed = 0  # broadcasts every receiver has
    done = asyncio.Event()

    async def receive(ws: Any) -> None:
        nonlocal completed
        async for raw in ws:
            event = json.loads(raw)
            if event["type"] != "message":
                continue
            seq = int(event["text"])
            latencies.append(time.perf_counter() - sent[seq])
            received[seq] = received.get(seq, 0) + 1
            if received[seq] == receivers:
                completed += 1
                done.set()

    readers = [asyncio.ensure_future(receive(ws)) for ws in clients]
    await asyncio.sleep(1.0)  # let join notices settle
    seq = 0
    results: dict[str, Any] = {}

    async def send(n: int) -> None:
        sent[n] = time.perf_counter()
        await sender.send(json.dumps({"text": str(n)}))

    for rate in rates:
        latencies.clear()
        start = time.perf_counter()
        count = int(rate * seconds)
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            await send(seq)
            seq += 1
        await asyncio.sleep(1.0)
        expected = count * receivers
        results[f"{rate} msg/s"] = {
            "deliveries": len(latencies),
            "missing": expected - len(latencies),
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "mean_ms": statistics.fmean(latencies) * 1000,
        }

    if closed_loop:
        # Closed loop: keep 16 broadcasts in flight until `seconds` pass.
        latencies.clear()
        in_flight = 16
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            while seq - completed >= in_flight:
                done.clear()
                await asyncio.wait_for(done.wait(), 30)
            await send(seq)
            seq += 1
        elapsed = time.perf_counter() - start
        await asyncio.sleep(1.0)
        results["closed loop, 16 in flight"] = {
            "deliveries": len(latencies),
            "deliveries_per_s": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
        }
    for reader in readers:
        reader.cancel()
    for ws in [*clients, sender]:
        await ws.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--receivers", type=int, default=100)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="raydo-ws-bench-") as tmp:
        for name, in_process in (("raydo (Ray hosts)", False), ("raydo --in-process", True)):
            server = DevServer(REPO / "examples" / "chat", Path(tmp), in_process=in_process).wait()
            try:
                report[name] = asyncio.run(run_target(server.url, args.receivers, args.seconds))
            finally:
                server.stop()
    print(
        f"\nbroadcast to {args.receivers} receivers in one room, {args.seconds:.0f} s per row,"
        f" {platform.node()}, {os.cpu_count()} cores\n"
    )
    print("| target | load | deliveries/s | p50 ms | p99 ms | missing |")
    print("|---|---|---:|---:|---:|---:|")
    for name, rows in report.items():
        for load, row in rows.items():
            rate = row.get("deliveries_per_s", row["deliveries"] / args.seconds)
            print(
                f"| {name} | {load} | {rate:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |"
                f" {row.get('missing', 0)} |"
            )
    out = REPO / "bench" / "results" / "ws_broadcast.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
