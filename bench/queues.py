"""Queue throughput: messages per second produced, and consumed end to end, through ``env.Q``.

Targets, one after the other, alternating for ``--rounds``:

* the queue's object in this process (``gateway.testing.start_app``, in-process hosts): the
  binding's own cost (codec, the object's turns, one commit per send and per settled
  batch), no network; the consumer runs in the same process;
* the queue's object in a Ray host (``start_app(ray=True)``, an embedded local Ray): sends go
  from this process over the msgpack stream to the host, where the consumer runs;
* ``sqlite3`` directly: one file in WAL mode, ``synchronous=NORMAL`` (what the objects use),
  one transaction per message sent, then batches of 100 read and deleted in one transaction
  each: the floor of a SQLite-backed queue with no runtime around it.

Two ways of sending: ``send`` with ``--concurrency`` calls in flight, and ``send_batch`` of 100.
The consumer (``max_batch_size = 100``, ``max_batch_timeout = 0``) acknowledges every message.
"produced/s" counts messages until the last send returns; "end to end/s" counts them until
the last is acknowledged (production and consumption overlap). Writes
``bench/results/queues.json``.

    .venv/bin/python bench/queues.py [--messages 5000] [--rounds 2] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from raydo.gateway.cli_queues import queue_counts
from raydo.gateway.testing import start_app

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "queues.json"
BATCH = 100


def make_app(folder: Path, name: str) -> Path:
    app = folder / name
    app.mkdir(parents=True)
    (app / "app.py").write_text(
        "from starlette.applications import Starlette\n"
        "app = Starlette()\n\n\n"
        "async def queue(batch, env):\n"
        "    pass  # every message is acknowledged when the handler returns\n"
    )
    (app / "raydo.toml").write_text(
        f'name = "bench-queues-{os.getpid()}-{name}"\nmain = "app:app"\n'
        '[[queues.producers]]\nbinding = "Q"\nqueue = "bench"\n'
        f'[[queues.consumers]]\nqueue = "bench"\nmax_batch_size = {BATCH}\n'
        "max_batch_timeout = 0\n"
    )
    return app


async def binding_rates(
    app_dir: Path, ray: bool, messages: int, concurrency: int
) -> dict[str, dict[str, float]]:
    rates: dict[str, dict[str, float]] = {}
    async with start_app(app_dir, ray=ray) as app:
        queue = app.env.Q
        await queue.send({"warm": "up"})
        acked = 1

        async def all_acked(target: int) -> float:
            while queue_counts(app.config, "bench").acked < target:
                await asyncio.sleep(0.005)
            return time.perf_counter()

        async def singles() -> None:
            sent = 0

            async def caller() -> None:
                nonlocal sent
                while sent < messages:
                    sent += 1
                    await queue.send({"n": sent, "to": "someone@example.com"})

            await asyncio.gather(*(caller() for _ in range(concurrency)))

        async def batches() -> None:
            for start in range(0, messages, BATCH):
                body = [
                    {"body": {"n": start + i, "to": "someone@example.com"}} for i in range(BATCH)
                ]
                await queue.send_batch(body)

        await all_acked(acked)
        for label, produce in (
            (f"send, {concurrency} in flight", singles),
            (f"send_batch of {BATCH}", batches),
        ):
            started = time.perf_counter()
            await produce()
            produced = time.perf_counter()
            acked += messages
            finished = await all_acked(acked)
            rates[label] = {
                "produced_per_s": messages / (produced - started),
                "end_to_end_per_s": messages / (finished - started),
            }
    return rates


def sqlite_rates(folder: Path, messages: int) -> dict[str, float]:
    path = folder / "direct.sqlite"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE q (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, body BLOB, visible_ms INTEGER)"
    )
    started = time.perf_counter()
    for n in range(messages):  # autocommit: one transaction per message, as one send
        conn.execute(
            "INSERT INTO q (id, body, visible_ms) VALUES (?, ?, ?)",
            (os.urandom(16).hex(), json.dumps({"n": n}).encode(), int(time.time() * 1000)),
        )
    produced = time.perf_counter()
    while True:
        conn.execute("BEGIN")
        rows = conn.execute("SELECT seq, body FROM q ORDER BY visible_ms, seq LIMIT ?", (BATCH,))
        seqs = [(seq,) for seq, _ in rows.fetchall()]
        conn.executemany("DELETE FROM q WHERE seq = ?", seqs)
        conn.execute("COMMIT")
        if not seqs:
            break
    finished = time.perf_counter()
    conn.close()
    return {
        "produced_per_s": messages / (produced - started),
        "end_to_end_per_s": messages / (finished - started),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray-hosted target")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="raydo-bench-queues-"))
    rows: list[dict[str, Any]] = []
    try:
        targets = [("in-process host", False)] + ([] if args.no_ray else [("Ray host", True)])
        for round_number in range(1, args.rounds + 1):
            direct = sqlite_rates(folder, args.messages)
            rows.append({"round": round_number, "target": "sqlite3", "op": "insert each", **direct})
            for target, ray in targets:
                app_dir = make_app(folder, f"r{round_number}-{'ray' if ray else 'local'}")
                rates = await binding_rates(app_dir, ray, args.messages, args.concurrency)
                for op, rate in rates.items():
                    ratio = rate["end_to_end_per_s"] / direct["end_to_end_per_s"]
                    rows.append(
                        {
                            "round": round_number,
                            "target": target,
                            "op": op,
                            **rate,
                            "end_to_end_ratio_to_sqlite3": ratio,
                        }
                    )
        print(
            f"{'round':>5}  {'target':<16} {'sending':<20} {'produced/s':>11} {'e2e/s':>9}  ratio"
        )
        for row in rows:
            ratio = row.get("end_to_end_ratio_to_sqlite3")
            print(
                f"{row['round']:>5}  {row['target']:<16} {row['op']:<20}"
                f" {row['produced_per_s']:>11,.0f} {row['end_to_end_per_s']:>9,.0f}"
                f"  {'' if ratio is None else f'{ratio:.3f}'}"
            )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "machine": {"node": platform.node(), "cores": os.cpu_count()},
                    "messages": args.messages,
                    "concurrency": args.concurrency,
                    "batch": BATCH,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )
    finally:
        if not args.no_ray:
            import ray

            from raydo.actors._ray import kill_hosts
            from raydo.gateway.config import load_config
            from raydo.gateway.runtime import runtime_spec

            if ray.is_initialized():
                for app_dir in folder.glob("r*-ray"):
                    kill_hosts(runtime_spec(load_config(app_dir)))
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
