"""Database binding throughput: point reads and inserts per second through ``env.DB``, each
beside the same operation done directly with ``sqlite3`` in the same run.

Targets, one after the other, alternating for ``--rounds``:

* ``env.DB`` with the database object in this process (``gateway.testing.start_app``,
  in-process hosts): the binding's own cost (statement, RPC codec, the object's turn, the
  authorizer, one commit per call), no network;
* ``env.DB`` with the database object in a Ray host (``start_app(ray=True)``, an embedded
  local Ray): the same call from the gateway process over the msgpack stream to the host
  process, as ``raydo dev`` serves it;
* ``sqlite3`` directly: one connection on a file in WAL mode, ``synchronous=NORMAL`` (what
  the objects use), one transaction per insert, the same SQL.

The binding is measured one call at a time (``sequential``) and with ``--concurrency`` calls
in flight; ``sqlite3`` is synchronous, so it runs one at a time. With ``--old REV``, the
in-process target runs a second time per round on raydo at git revision ``REV``
(``bench/old_tree.py``): before and after a change, in one run. The calls run on uvloop,
the loop ``raydo dev`` and ``raydo serve`` run the gateway and the hosts on (``--loop
asyncio`` for the standard one). Writes ``bench/results/d1.json``.

    .venv/bin/python bench/d1.py [--seconds 3] [--rounds 2] [--concurrency 32] [--old REV]
        [--loop uvloop|asyncio]
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
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from old_tree import exported, run_child

from raydo.gateway.cli_db import apply_migrations
from raydo.gateway.testing import CONFIGURED_STORAGE, start_app

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "d1.json"
ROWS = 10_000
SCHEMA = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT)"
READ = "SELECT id, name, email FROM users WHERE id = ?"
INSERT = "INSERT INTO users (name, email) VALUES (?, ?)"


LOOPS = ("uvloop", "asyncio")


def run_on_loop(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run ``main`` on ``loop``: uvloop (what raydo serves with) or asyncio's own."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def make_app(folder: Path) -> Path:
    app = folder / "app"
    (app / "migrations").mkdir(parents=True)
    (app / "migrations" / "0001_users.sql").write_text(SCHEMA + ";\n")
    (app / "app.py").write_text("from starlette.applications import Starlette\napp = Starlette()\n")
    (app / "raydo.toml").write_text(
        f'name = "bench-d1-{os.getpid()}"\nmain = "app:app"\n'
        '[[d1_databases]]\nbinding = "DB"\ndatabase_name = "bench"\n'
    )
    return app


async def measure(
    op: Callable[[int], Awaitable[Any]], seconds: float, inflight: int
) -> tuple[float, float]:
    """Operations per second of ``op`` with ``inflight`` callers for ``seconds``, and this
    process's CPU microseconds per operation (the in-process host's included)."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op(done)
            done += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(inflight)))
    cpu_us = (time.process_time() - cpu) * 1e6 / max(done, 1)
    return done / (time.perf_counter() - started), cpu_us


def measure_sync(op: Callable[[int], Any], seconds: float) -> tuple[float, float]:
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        op(done)
        done += 1
    cpu_us = (time.process_time() - cpu) * 1e6 / max(done, 1)
    return done / (time.perf_counter() - started), cpu_us


async def binding_rates(
    app_dir: Path, ray: bool, seconds: float, concurrency: int
) -> dict[str, tuple[float, float]]:
    rates: dict[str, tuple[float, float]] = {}
    # The configured folder: the one the migrations were applied to.
    async with start_app(app_dir, ray=ray, storage=CONFIGURED_STORAGE) as app:
        db = app.env.DB
        read = db.prepare(READ)
        insert = db.prepare(INSERT)
        count = await db.prepare("SELECT count(*) AS n FROM users").first("n")
        if count < ROWS:
            await db.batch([insert.bind(f"user{i}", f"u{i}@x") for i in range(ROWS - count)])

        async def point_read(i: int) -> None:
            row = await read.bind(random.randint(1, ROWS)).first()
            assert row is not None

        async def one_insert(i: int) -> None:
            await insert.bind(f"new{i}", "n@x").run()

        for label, inflight in (("sequential", 1), (f"{concurrency} in flight", concurrency)):
            await measure(point_read, 0.5, inflight)  # warm-up
            rates[f"reads, {label}"] = await measure(point_read, seconds, inflight)
            rates[f"inserts, {label}"] = await measure(one_insert, seconds, inflight)
    return rates


def sqlite_rates(folder: Path, seconds: float) -> dict[str, tuple[float, float]]:
    path = folder / "direct.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        conn.execute(SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(INSERT, [(f"user{i}", f"u{i}@x") for i in range(ROWS)])
        conn.execute("COMMIT")

    def point_read(i: int) -> None:
        row = conn.execute(READ, (random.randint(1, ROWS),)).fetchone()
        assert row is not None

    def one_insert(i: int) -> None:
        conn.execute(INSERT, (f"new{i}", "n@x"))  # autocommit: one transaction each

    measure_sync(point_read, 0.5)
    rates = {
        "reads, sequential": measure_sync(point_read, seconds),
        "inserts, sequential": measure_sync(one_insert, seconds),
    }
    conn.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray-hosted target")
    parser.add_argument("--old", help="also time the in-process target at this git revision")
    parser.add_argument("--loop", choices=LOOPS, default="uvloop")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # see bench/old_tree.py
    args = parser.parse_args()
    run_on_loop(targets(args), args.loop)


async def targets(args: argparse.Namespace) -> None:
    if args.child is not None:  # one in-process target for --old, on the old tree
        rates = await binding_rates(args.child, False, args.seconds, args.concurrency)
        print(json.dumps(rates))
        return
    with contextlib.ExitStack() as stack:
        old_tree = None if args.old is None else stack.enter_context(exported(args.old))
        await run(args, old_tree)


async def run(args: argparse.Namespace, old_tree: Path | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="raydo-bench-d1-"))
    try:
        app_dir = make_app(folder)
        apply_migrations(app_dir, "DB")
        rows: list[dict[str, Any]] = []
        targets: list[tuple[str, bool | None]] = [("env.DB, in-process host", False)]
        if old_tree is not None:
            targets.append((f"env.DB, in-process, {args.old}", None))
        if not args.no_ray:
            targets.append(("env.DB, Ray host", True))
        child = [
            "--seconds", str(args.seconds), "--concurrency", str(args.concurrency),
            "--loop", args.loop, "--child", str(app_dir),
        ]  # fmt: skip
        for round_number in range(1, args.rounds + 1):
            direct = sqlite_rates(folder, args.seconds)
            for op, (rate, cpu) in direct.items():
                rows.append(
                    {
                        "round": round_number,
                        "target": "sqlite3",
                        "op": op,
                        "per_s": rate,
                        "cpu_us": cpu,
                    }
                )
            for target, ray in targets:
                if ray is None:
                    assert old_tree is not None
                    rates = run_child(old_tree, Path(__file__), child)
                else:
                    rates = await binding_rates(app_dir, ray, args.seconds, args.concurrency)
                for op, (rate, cpu) in rates.items():
                    kind = op.split(",")[0] + ", sequential"
                    rows.append(
                        {
                            "round": round_number,
                            "target": target,
                            "op": op,
                            "per_s": rate,
                            "cpu_us": cpu,
                            "ratio_to_sqlite3": rate / direct[kind][0],
                        }
                    )
        print(f"load average {os.getloadavg()[0]:.1f}; CPU µs/op is this process's (for a Ray")
        print("host, the gateway's only)\n")
        print(
            f"{'round':>5}  {'target':<30} {'operation':<22} {'per s':>10}  ratio {'CPU µs/op':>10}"
        )
        for row in rows:
            ratio = f"{row['ratio_to_sqlite3']:.3f}" if "ratio_to_sqlite3" in row else ""
            print(
                f"{row['round']:>5}  {row['target']:<30} {row['op']:<22}"
                f" {row['per_s']:>10,.0f}  {ratio:<5} {row['cpu_us']:>10.1f}"
            )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "machine": {"node": platform.node(), "cores": os.cpu_count()},
                    "seconds": args.seconds,
                    "concurrency": args.concurrency,
                    "loop": args.loop,
                    "old": args.old,
                    "load_average": os.getloadavg(),
                    "rows_in_table": ROWS,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
