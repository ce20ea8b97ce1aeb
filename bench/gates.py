"""Input gates beside strict turns, in one run: the counter over HTTP, and one object whose
every event awaits a slow (200 ms) call.

* counter: the counter example on ``raydo dev`` (embedded local Ray), once as it ships
  (``concurrency = "strict"``, the default) and once with ``concurrency = "gates"`` in its
  binding; ``wrk -t1 -c32`` on one object and over 1,000 objects, as
  ``bench/counter_http.py`` does (its functions run the rows). Target: gates at least 0.9x
  strict.
* counter in process: the counter's object through a stub with in-process hosts
  (``LocalPlacement``: no HTTP, no Ray, so the host's own path is most of what is timed),
  ``--events`` increments on one object one after another, on one object 64 in flight, and
  over 64 objects 64 in flight.
* slow upstream: in process (``LocalPlacement``, no HTTP), ``--callers`` callers each calling
  one object in a loop for ``--slow-seconds``; each event awaits a 200 ms call to another
  object (``bench/apps/gates/slow.py``). Strict mode runs them one at a time (about 5
  events/s); gates mode lets them overlap.

Rounds alternate the modes. Prints each row and the ratio gates / strict, and writes
``bench/results/gates.json``.

    .venv/bin/python bench/gates.py [--seconds 10] [--rounds 2] [--events 5000] [--callers 64]

Needs ``wrk`` on the PATH (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from counter_http import MANY_OBJECTS_LUA, OBJECTS, ONE_OBJECT_LUA, measure  # noqa: E402

from raydo.actors import BindingSpec, RuntimeSpec  # noqa: E402
from raydo.actors.placement import LocalPlacement  # noqa: E402

REPO = HERE.parent
MODES = ("strict", "gates")
UPSTREAM_SECONDS = 0.2


def counter_app(workdir: Path, mode: str) -> Path:
    """A copy of the counter example whose binding runs in ``mode`` (``measure`` starts the
    copy under ``<returned>/counter``)."""
    home = workdir / mode
    app = home / "counter"
    if not app.exists():
        shutil.copytree(
            REPO / "examples" / "counter",
            app,
            ignore=shutil.ignore_patterns(".raydo", "__pycache__"),
        )
        toml = app / "raydo.toml"
        text = toml.read_text()
        line = 'class_name = "counter:Counter"\n'
        assert line in text, "the counter example's binding changed"
        toml.write_text(text.replace(line, f'{line}concurrency = "{mode}"\n'))
    return home


async def counter_in_process(mode: str, events: int) -> dict[str, dict[str, float]]:
    """The counter's object through a stub with in-process hosts (no HTTP, no Ray: the
    host's own path is most of what is timed): one object, one call after another; one
    object with 64 calls in flight; 64 objects, 64 in flight. Each row's increments per
    second and the process's CPU time per increment (the fairer figure on a shared
    machine: other processes' load slows the wall clock, not the CPU an event takes)."""
    with tempfile.TemporaryDirectory(prefix="raydo-bench-gates-") as storage:
        spec = RuntimeSpec(
            "bench-gates",
            str(REPO / "examples" / "counter"),
            storage,
            bindings=(BindingSpec("COUNTER", "counter:Counter", shards=1, concurrency=mode),),
        )
        placement = LocalPlacement(spec)
        try:
            one = placement.env.COUNTER.get_by_name("one")
            many = [placement.env.COUNTER.get_by_name(f"o{i}") for i in range(64)]
            for _ in range(500):
                await one.increment()
            await asyncio.gather(*(stub.increment() for stub in many))
            rows: dict[str, dict[str, float]] = {}

            async def timed(pattern: str, batch: Any, count: int) -> None:
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(count):
                    await batch()
                done = count * (64 if pattern != "one object" else 1)
                rows[pattern] = {
                    "events_per_s": done / (time.perf_counter() - wall),
                    "cpu_us_per_event": (time.process_time() - cpu) / done * 1e6,
                }

            await timed("one object", one.increment, events)
            await timed(
                "one object, 64 in flight",
                lambda: asyncio.gather(*(one.increment() for _ in range(64))),
                events // 64,
            )
            await timed(
                "64 objects",
                lambda: asyncio.gather(*(stub.increment() for stub in many)),
                events // 64,
            )
            expected = 500 + events + events // 64 * 64
            assert await one.value() == expected, "an increment was lost"
        finally:
            await placement.close()
    return rows


async def slow_upstream(mode: str, callers: int, seconds: float) -> dict[str, float]:
    """Events per second one object sustains when each of its events awaits a slow call."""
    with tempfile.TemporaryDirectory(prefix="raydo-bench-gates-") as storage:
        spec = RuntimeSpec(
            "bench-gates",
            str(HERE / "apps" / "gates"),
            storage,
            bindings=(
                BindingSpec("CALLER", "slow:Caller", shards=1, concurrency=mode),
                BindingSpec("UPSTREAM", "slow:Upstream", shards=1),
            ),
        )
        placement = LocalPlacement(spec)
        try:
            caller = placement.env.CALLER.get_by_name("one")
            await caller.call(0)  # built, and the upstream too
            done = 0
            latencies: list[float] = []
            deadline = time.perf_counter() + seconds

            async def loop() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    await caller.call(UPSTREAM_SECONDS)
                    latencies.append(time.perf_counter() - started)
                    done += 1

            started = time.perf_counter()
            await asyncio.gather(*(loop() for _ in range(callers)))
            elapsed = time.perf_counter() - started
            count = await caller.call(0) - 2  # every event counted itself: none was lost
            assert count == done, (count, done)
        finally:
            await placement.close()
    latencies.sort()
    return {
        "events_per_s": done / elapsed,
        "events": done,
        "p50_ms": statistics.median(latencies) * 1000,
        "max_ms": latencies[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="of each wrk row")
    parser.add_argument("--rounds", type=int, default=2, help="alternate the modes this often")
    parser.add_argument("--events", type=int, default=5000, help="of each in-process row")
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--slow-seconds", type=float, default=6.0)
    parser.add_argument("--no-http", action="store_true", help="the in-process rows only")
    args = parser.parse_args()
    if not args.no_http and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="raydo-bench-") as tmp:
        workdir = Path(tmp)
        scripts = {"one object": workdir / "one.lua", f"{OBJECTS} objects": workdir / "many.lua"}
        scripts["one object"].write_text(ONE_OBJECT_LUA)
        scripts[f"{OBJECTS} objects"].write_text(MANY_OBJECTS_LUA)
        for round_ in range(args.rounds):
            for mode in MODES if round_ % 2 == 0 else reversed(MODES):
                row: dict[str, Any] = {"round": round_, "mode": mode}
                if not args.no_http:
                    try:
                        row["counter"] = measure(
                            "raydo", counter_app(workdir, mode), args.seconds, scripts
                        )
                    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a row lost, not the run
                        row["counter_failed"] = repr(exc)
                        print(f"round {round_} {mode}: the HTTP rows failed: {exc!r}", flush=True)
                row["in_process"] = asyncio.run(counter_in_process(mode, args.events))
                row["slow_upstream"] = asyncio.run(
                    slow_upstream(mode, args.callers, args.slow_seconds)
                )
                rounds.append(row)
                shown = "  ".join(
                    f"{pattern}: {result['rps']:,.0f} req/s p99 {result['p99_ms']:.1f} ms"
                    for pattern, result in row.get("counter", {}).items()
                )
                shown += "  in process: " + "  ".join(
                    f"{pattern}: {r['events_per_s']:,.0f}/s {r['cpu_us_per_event']:.0f} µs CPU"
                    for pattern, r in row["in_process"].items()
                )
                slow = row["slow_upstream"]
                print(
                    f"round {round_} {mode:6} {shown}  slow upstream:"
                    f" {slow['events_per_s']:.1f} events/s (p50 {slow['p50_ms']:.0f} ms)",
                    flush=True,
                )

    def best(mode: str, pick: Any, needs: str = "in_process") -> float:
        return max(pick(row) for row in rounds if row["mode"] == mode and needs in row)

    summary: dict[str, Any] = {}
    patterns = [] if args.no_http else list(scripts)
    for pattern in patterns:
        summary[f"counter, {pattern} (req/s)"] = {
            mode: best(mode, lambda row, p=pattern: row["counter"][p]["rps"], "counter")
            for mode in MODES
        }
    for pattern in rounds[0]["in_process"]:
        summary[f"counter in process, {pattern} (events/s)"] = {
            mode: best(mode, lambda row, p=pattern: row["in_process"][p]["events_per_s"])
            for mode in MODES
        }
        summary[f"counter in process, {pattern} (CPU µs/event, lower is better)"] = {
            mode: -best(mode, lambda row, p=pattern: -row["in_process"][p]["cpu_us_per_event"])
            for mode in MODES
        }
    summary[f"slow upstream, {args.callers} callers (events/s)"] = {
        mode: best(mode, lambda row: row["slow_upstream"]["events_per_s"]) for mode in MODES
    }
    print(
        f"\nbest of {args.rounds} rounds, {platform.node()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}\n"
    )
    print("| row | strict | gates | gates / strict |")
    print("|---|---:|---:|---:|")
    for name, values in summary.items():
        values["ratio"] = values["gates"] / values["strict"]
        print(
            f"| {name} | {values['strict']:,.1f} | {values['gates']:,.1f} | {values['ratio']:.2f} |"
        )
    out = REPO / "bench" / "results" / "gates.json"
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "node": platform.node(),
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average": os.getloadavg(),
                },
                "seconds": args.seconds,
                "events": args.events,
                "callers": args.callers,
                "slow_seconds": args.slow_seconds,
                "upstream_seconds": UPSTREAM_SECONDS,
                "rounds": rounds,
                "best": summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
