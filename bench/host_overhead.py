"""What metrics and tracing cost a host per event: the same events, before and after, one run.

Three targets, each a fresh process running the counter example's object in-process
(``LocalPlacement``: stub -> host -> object -> SQLite commit, no HTTP, no Ray), so the
host's own path is most of what is timed:

* ``before``: the ``actors`` and ``storage`` packages of git ``HEAD`` (``--base``), without
  this working tree's instrumentation;
* ``after``: the working tree, metrics counting, no tracer (the default);
* ``after+tracing``: the working tree with an in-memory span exporter (four spans per event).

Each runs ``--events`` increments one after another on one object, then the same spread
over 64 objects, 64 in flight; rounds alternate the targets. Prints µs per event and the
ratio to ``before``, and writes ``bench/results/host_overhead.json``.

    .venv/bin/python bench/host_overhead.py [--events 20000] [--rounds 3] [--base HEAD]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import asyncio, sys, tempfile, time
from pathlib import Path

events, traced, app_root = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
if traced:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from raydo.actors import _tracing
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _tracing.use_provider(provider)
from raydo.actors import BindingSpec, RuntimeSpec
from raydo.actors.placement import LocalPlacement

async def main() -> None:
    with tempfile.TemporaryDirectory() as storage:
        spec = RuntimeSpec("bench", app_root, storage,
                           bindings=(BindingSpec("COUNTER", "counter:Counter", shards=1),))
        placement = LocalPlacement(spec)
        ns = placement.env.COUNTER
        one = ns.get_by_name("one")
        many = [ns.get_by_name(f"o{i}") for i in range(64)]
        for _ in range(2000):
            await one.increment()
        await asyncio.gather(*(s.increment() for s in many))
        started = time.perf_counter()
        for _ in range(events):
            await one.increment()
        sequential = (time.perf_counter() - started) / events
        started = time.perf_counter()
        for _ in range(events // 64):
            await asyncio.gather(*(s.increment() for s in many))
            if traced:
                exporter.clear()
        spread = (time.perf_counter() - started) / (events // 64 * 64)
        await placement.close()
    print(sequential * 1e6, spread * 1e6)

asyncio.run(main())
"""


def run(root: Path, events: int, traced: bool) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(events),
            "1" if traced else "0",
            str(REPO / "examples" / "counter"),
        ],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default="HEAD", help="the git revision to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        archive = subprocess.run(
            ["git", "archive", args.base, "actors", "storage"],
            cwd=REPO,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", base], input=archive, check=True)
        targets = [
            ("before", Path(base), False),
            ("after", REPO, False),
            ("after+tracing", REPO, True),
        ]
        rows: list[dict[str, object]] = []
        for round_ in range(args.rounds):
            for name, root, traced in targets:
                sequential, spread = run(root, args.events, traced)
                rows.append(
                    {
                        "round": round_,
                        "target": name,
                        "sequential_us": sequential,
                        "spread_us": spread,
                    }
                )
                print(
                    f"round {round_} {name:14} one object {sequential:7.1f} µs/event"
                    f"   64 objects {spread:7.1f} µs/event",
                    flush=True,
                )
    summary = {}
    for name, _, _ in targets:
        mine = [r for r in rows if r["target"] == name]
        summary[name] = {
            "sequential_us": min(float(r["sequential_us"]) for r in mine),  # type: ignore[arg-type]
            "spread_us": min(float(r["spread_us"]) for r in mine),  # type: ignore[arg-type]
        }
    print("\nbest of each (µs per event; ratio to before):")
    for name, best in summary.items():
        ratio_seq = best["sequential_us"] / summary["before"]["sequential_us"]
        ratio_spread = best["spread_us"] / summary["before"]["spread_us"]
        print(
            f"{name:14} one object {best['sequential_us']:7.1f} ({ratio_seq:.3f})"
            f"   64 objects {best['spread_us']:7.1f} ({ratio_spread:.3f})"
        )
    out = REPO / "bench" / "results" / "host_overhead.json"
    out.write_text(
        json.dumps(
            {
                "events": args.events,
                "rounds": rows,
                "best": summary,
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
