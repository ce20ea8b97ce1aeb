"""Where the CPU of one event goes: py-spy on the gateway and on the hosts under the counter's
load, one object beside 1,000 objects, in one run.

``raydo dev examples/counter`` (embedded local Ray, 2 hosts) on fresh storage; ``wrk -t1 -c32``
after a warm-up, first on one object, then spread uniformly over 1,000 objects created first.
During each row py-spy samples the gateway process and every host process (``--nonblocking``,
active threads only, so a sample is time on a CPU, not waiting), and each sample is charged
to one stage of an event by its innermost frame that belongs to a stage (see ``STAGES``).
Each process's CPU time over the row (user + system), divided by the requests wrk completed, is
split over the stages in proportion to their samples: microseconds per event per stage.
Flame graphs of a second, shorter recording go to ``bench/results/profile_*.svg``; the table
to ``bench/results/profile_events.json``.

    .venv/bin/python bench/profile_events.py [--seconds 8] [--rate 200]

Needs ``wrk`` and ``py-spy`` (``pip install py-spy``) on the PATH or beside the interpreter, and
permission to read other processes' memory (ptrace).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import psutil
from counter_http import MANY_OBJECTS_LUA, ONE_OBJECT_LUA, create_objects, start, stop, wrk

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = REPO / "bench" / "results"

STAGES: list[tuple[str, tuple[str, ...]]] = [
    # (stage, substrings of a frame's "function (file:line)"): the first stage whose substring
    # a frame holds names it; a sample goes to the innermost frame that has a stage.
    ("SQLite", ("sqlite3", "storage/_core", "storage/sql.py", "storage/_authorizer")),
    ("storage (other)", ("storage/",)),
    ("metrics", ("_metrics.py", "prometheus_client")),
    ("tracing", ("_tracing.py", "opentelemetry")),
    ("frame encode/decode", ("codec.py", "msgpack", "_frames.py", "_payloads.py")),
    ("socket write", ("_frame_writer.py",)),
    ("host intake (wire read)", ("_wire.py", "_intake.py", "_relay.py")),
    ("slot lookup / eviction", ("_slot.py", "_live.py", "_heap.py", "_socket_index.py")),
    (
        "turn (dispatch, gate, commit)",
        (
            "_turn.py",
            "_dispatch.py",
            "_gate.py",
            "_mailbox.py",
            "_object.py",
            "_host.py",
            "_durability.py",
            "_limits.py",
            "_watchdog.py",
            "_env.py",
            "_app_env.py",
        ),
    ),
    (
        "stub / routing to a host",
        (
            "_placement.py",
            "placement.py",
            "_namespace.py",
            "_ids.py",
            "_local.py",
            "_streams.py",
            "_streamed_reply.py",
        ),
    ),
    ("HTTP parse / write", ("httptools", "uvicorn/protocols", "_http_protocol.py", "h11")),
    ("routing / middleware", ("starlette", "gateway/")),
    ("app code", ("examples/",)),
    ("event loop", ("asyncio/", "uvloop")),
    ("Ray", ("ray/",)),
]


def stage_of(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for stage, needles in STAGES:
            if any(needle in frame for needle in needles):
                return stage
    return "other"


def py_spy() -> str:
    beside = BIN / "py-spy"
    return str(beside) if beside.exists() else "py-spy"


def host_pids(root_pid: int) -> list[int]:
    pids = []
    for proc in psutil.Process(root_pid).children(recursive=True):
        try:
            if "HostActor" in " ".join(proc.cmdline()):
                pids.append(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


def record(
    pids: dict[str, list[int]], seconds: int, rate: int, fmt: str, out: Path
) -> list[tuple[str, int, Path, subprocess.Popen[bytes]]]:
    """Start one py-spy per process; the caller waits for them."""
    started = []
    for role, role_pids in pids.items():
        for n, pid in enumerate(role_pids):
            target = out / f"{role}{n}.{'txt' if fmt == 'raw' else 'svg'}"
            proc = subprocess.Popen(
                [
                    py_spy(),
                    "record",
                    "--nonblocking",
                    "-r",
                    str(rate),
                    "-d",
                    str(seconds),
                    "-f",
                    fmt,
                    "-o",
                    str(target),
                    "-p",
                    str(pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started.append((role, pid, target, proc))
    return started


def samples_by_stage(raw: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[stage_of(stack)] += int(count)
    return counts


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def profile_row(
    url: str, root_pid: int, script: Path, seconds: int, rate: int, workdir: Path, name: str
) -> dict[str, object]:
    """One row: wrk's figures, each process's CPU per event, and that CPU split over the
    stages in proportion to the samples each stage took in that process."""
    pids = {"gateway": [root_pid], "host": host_pids(root_pid)}
    wrk(url, script, 3)  # warm-up
    out = workdir / name
    out.mkdir()
    before = {role: cpu_seconds(role_pids) for role, role_pids in pids.items()}
    recorders = record(pids, seconds, rate, "raw", out)
    result = wrk(url, script, seconds)
    after = {role: cpu_seconds(role_pids) for role, role_pids in pids.items()}
    for *_, proc in recorders:
        proc.wait(60)
    requests = result["rps"] * seconds
    cpu_us = {role: (after[role] - before[role]) / requests * 1e6 for role in pids}
    samples: dict[str, Counter[str]] = {role: Counter() for role in pids}
    for role, _pid, target, _proc in recorders:
        if not target.exists():
            raise SystemExit(f"py-spy wrote nothing for the {role}: is ptrace allowed?")
        samples[role].update(samples_by_stage(target))
    stages: dict[str, dict[str, float]] = {}
    for role, counts in samples.items():
        total = sum(counts.values()) or 1
        for stage, count in counts.items():
            per = stages.setdefault(stage, {"gateway": 0.0, "host": 0.0})
            per[role] += cpu_us[role] * count / total
    # Flame graphs: a second, shorter recording (py-spy writes one format per run).
    flames = record(pids, min(seconds, 5), rate, "flamegraph", out)
    wrk(url, script, min(seconds, 5))
    for role, _pid, target, proc in flames:
        proc.wait(60)
        if target.exists():
            target.replace(RESULTS / f"profile_{name}_{role}{target.stem[-1]}.svg")
    return {"wrk": result, "cpu_us_per_event": cpu_us, "us_per_event": stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raydo-profile-") as tmp:
        workdir = Path(tmp)
        scripts = {"one": workdir / "one.lua", "many": workdir / "many.lua"}
        scripts["one"].write_text(ONE_OBJECT_LUA)
        scripts["many"].write_text(MANY_OBJECTS_LUA)
        proc, url = start("raydo", workdir)
        try:
            asyncio.run(create_objects(url))
            rows = {
                "one object": profile_row(
                    url + "/counter/one/increment",
                    proc.pid,
                    scripts["one"],
                    args.seconds,
                    args.rate,
                    workdir,
                    "one",
                ),
                "1,000 objects": profile_row(
                    url + "/",
                    proc.pid,
                    scripts["many"],
                    args.seconds,
                    args.rate,
                    workdir,
                    "many",
                ),
            }
        finally:
            stop(proc)
    print_table(rows)
    (RESULTS / "profile_events.json").write_text(
        json.dumps(
            {
                "machine": platform.node(),
                "cpus": psutil.cpu_count(),
                "seconds": args.seconds,
                "rate": args.rate,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )


def print_table(rows: dict[str, dict[str, object]]) -> None:
    names = list(rows)
    stages = [stage for stage, _ in STAGES] + ["other"]
    print("| stage | " + " | ".join(f"{n}: gateway µs | {n}: host µs" for n in names) + " |")
    print("|---|" + "---:|" * (2 * len(names)))
    totals = {n: [0.0, 0.0] for n in names}
    for stage in stages:
        cells = []
        for n in names:
            per = rows[n]["us_per_event"].get(stage, {"gateway": 0.0, "host": 0.0})  # type: ignore[attr-defined]
            totals[n][0] += per["gateway"]
            totals[n][1] += per["host"]
            cells += [f"{per['gateway']:.1f}", f"{per['host']:.1f}"]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    cells = []
    for n in names:
        cells += [f"**{totals[n][0]:.1f}**", f"**{totals[n][1]:.1f}**"]
    print("| all sampled | " + " | ".join(cells) + " |")
    for n in names:
        print(f"{n}: {rows[n]['wrk']['rps']:,.0f} requests/s")  # type: ignore[index]


if __name__ == "__main__":
    main()
