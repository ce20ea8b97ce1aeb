"""raydo beside Cloudflare's workerd, same load, same run: the counter and chat examples.

``worker.js`` is ``examples/counter`` and ``examples/chat`` for workerd (same routes, same
storage calls, same messages), served by plain ``workerd serve config.capnp`` with SQLite
Durable Objects on local disk (one file per object, WAL, an fsync per commit). raydo serves
the examples themselves with ``raydo dev`` (embedded local Ray, objects in Ray hosts), once
with the default ``durability = "normal"`` and once with ``"full"`` (fsync per commit, the
same durability as workerd's). workerd also runs with in-memory storage (``configMem``), the
peer for raydo's default: neither fsyncs each commit. Each target gets a fresh server and fresh
storage per group.

Rows, each target in turn, the order rotated every round:

1. counter, one object: ``wrk -t1 -c32`` on ``POST /counter/one/increment`` (bench/counter_http);
2. counter, 1,000 objects (created first), uniformly at random;
3. broadcast, 100 receivers + 1 sender in one room at 100 messages/s (bench/ws_broadcast);
4. broadcast, closed loop with 16 broadcasts in flight (the highest sustained fan-out).

Besides throughput and latency it records the server's CPU time per request or delivery
(every process of the server: for raydo the gateway, the hosts and Ray's own processes),
the figure that moves least on a shared machine, and the cores other processes took meanwhile
(the machine's busy time less the server's and the load generator's). Writes
``bench/results/compare_workerd.json``, ``.md`` (the table, printed too) and ``.png``
(matplotlib).

    .venv/bin/python bench/compare_workerd/run.py            # 3 rounds, 10 s per row
    .venv/bin/python bench/compare_workerd/run.py --quick    # 1 round, 3 s per row

Needs ``wrk`` and Node's ``npm`` (it runs ``npm ci`` here when workerd is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the sibling benchmarks' load generators

from counter_http import (  # noqa: E402
    CONNECTIONS,
    MANY_OBJECTS_LUA,
    OBJECTS,
    ONE_OBJECT_LUA,
    create_objects,
    wrk,
)
from servers import REPO, DevServer, ServerProcess, free_port  # noqa: E402
from ws_broadcast import run_target  # noqa: E402

WORKERD = HERE / "node_modules" / "@cloudflare" / "workerd-linux-64" / "bin" / "workerd"
RESULTS = REPO / "bench" / "results"
RECEIVERS = 100
RATE = 100  # messages/s of the fixed-rate broadcast row
# Before each row, wait (at most PATIENCE s) for other processes to take under QUIET cores:
# the machine is shared, and a row measured beside someone else's test run says little.
QUIET = 0.25
PATIENCE = 30.0
TARGETS = ("workerd", "workerd-mem", "raydo", "raydo-full")
LABELS = {
    "workerd": "workerd (localDisk, fsync per commit)",
    "workerd-mem": "workerd (inMemory storage)",
    "raydo": 'raydo (Ray hosts, durability="normal")',
    "raydo-full": 'raydo (Ray hosts, durability="full")',
}
# workerd's in-memory storage has no SQL API, which the chat room needs for its history.
CHAT_TARGETS = tuple(t for t in TARGETS if t != "workerd-mem")
# The paired ratios reported: (raydo target, workerd target). Same durability for the first
# two (full vs localDisk); the third puts raydo's default beside workerd without a disk.
RATIOS = (("raydo-full", "workerd"), ("raydo", "workerd"), ("raydo", "workerd-mem"))
ROWS = (
    "counter, 1 object",
    f"counter, {OBJECTS:,} objects",
    f"broadcast to {RECEIVERS}, {RATE} msg/s",
    f"broadcast to {RECEIVERS}, closed loop",
)

# ---------------------------------------------------------------------------------- servers


class WorkerdServer(ServerProcess):
    """``workerd serve config.capnp`` on a free port of 127.0.0.1, storage in ``workdir``;
    ``memory`` serves ``configMem`` (in-memory object storage)."""

    label = "workerd"
    ready_timeout = 30.0
    poll_s = 0.2

    def __init__(self, workdir: Path, *, memory: bool = False) -> None:
        storage = Path(tempfile.mkdtemp(prefix="workerd-", dir=workdir))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            str(WORKERD),
            "serve",
            str(HERE / "config.capnp"),
            "configMem" if memory else "config",
            "--socket-addr",
            f"http=127.0.0.1:{self.port}",
            "--directory-path",
            f"disk={storage}",
        ]
        self._start(args)


Server = WorkerdServer | DevServer


def ensure_workerd() -> str:
    """Install the pinned workerd (``npm ci``) unless it is there; return its npm version."""
    if not WORKERD.exists():
        if shutil.which("npm") is None:
            raise SystemExit("npm is not installed: needed once to fetch workerd")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    subprocess.run([str(WORKERD), "--version"], capture_output=True, check=True)
    package = json.loads((HERE / "node_modules" / "workerd" / "package.json").read_text())
    return str(package["version"])


def app_copy(example: str, workdir: Path, durability: str) -> Path:
    """``examples/<example>`` with ``durability`` set, in ``workdir`` (DevServer copies it
    again, under a name of its own)."""
    folder = workdir / f"{example}-{durability}"
    if not folder.exists():
        shutil.copytree(
            REPO / "examples" / example,
            folder,
            ignore=shutil.ignore_patterns(".raydo", "__pycache__"),
        )
        config = folder / "raydo.toml"
        lines = config.read_text().splitlines(keepends=True)
        # Top-level key: before the first table header.
        first_table = next(i for i, line in enumerate(lines) if line.startswith("["))
        lines.insert(first_table, f'durability = "{durability}"\n\n')
        config.write_text("".join(lines))
    return folder


def start(target: str, example: str, workdir: Path) -> Server:
    if target.startswith("workerd"):
        return WorkerdServer(workdir, memory=target == "workerd-mem").wait()
    durability = "full" if target == "raydo-full" else "normal"
    return DevServer(app_copy(example, workdir, durability), workdir).wait()


# ------------------------------------------------------------------------------ measurement


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (every core, steal included)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Where the CPU went while a row ran: the server (its process and every descendant),
    the load generator (this process, or its reaped children such as ``wrk``), the rest."""

    def __init__(self, root_pid: int) -> None:
        self.root = psutil.Process(root_pid)

    def _server(self) -> dict[int, float]:
        sample = {}
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                sample[proc.pid] = times.user + times.system
            except psutil.Error:
                continue
        return sample

    @staticmethod
    def _client() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    @contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        """``with meter.measure() as cpu:`` fills ``cpu`` at the end of the block with
        ``server_s``, ``client_s``, ``wall_s`` and ``foreign_cores`` (processes that exit
        inside the block are not counted as the server's)."""
        server, client, busy, wall = self._server(), self._client(), busy_seconds(), time.time()
        cpu: dict[str, float] = {}
        yield cpu
        after = self._server()
        cpu["server_s"] = sum(t - server.get(pid, 0.0) for pid, t in after.items())
        cpu["client_s"] = self._client() - client
        cpu["wall_s"] = time.time() - wall
        rest = busy_seconds() - busy - cpu["server_s"] - cpu["client_s"]
        cpu["foreign_cores"] = max(0.0, rest) / cpu["wall_s"]

    def wait_quiet(self) -> float:
        """Sample one second at a time until other processes take under ``QUIET`` cores, for
        at most ``PATIENCE`` seconds; return the seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < PATIENCE:
            with self.measure() as cpu:
                time.sleep(1)
            if cpu["foreign_cores"] < QUIET:
                break
        return time.monotonic() - start


def counter_rows(server: Server, seconds: int, scripts: dict[str, Path]) -> dict[str, Any]:
    asyncio.run(create_objects(server.url))
    meter = CpuMeter(server.proc.pid)
    results: dict[str, Any] = {}
    for row, script in scripts.items():
        target = server.url + ("/counter/one/increment" if row == ROWS[0] else "/")
        waited = meter.wait_quiet()
        wrk(target, script, max(1, seconds // 3))  # warm-up
        with meter.measure() as cpu:
            result = wrk(target, script, seconds)
        result["cpu_us_per_op"] = cpu["server_s"] / (result["rps"] * seconds) * 1e6
        result["throughput"] = result.pop("rps")
        results[row] = {**result, **cpu, "waited_s": waited}
    return results


def broadcast_rows(server: Server, seconds: int) -> dict[str, Any]:
    meter = CpuMeter(server.proc.pid)
    waited = meter.wait_quiet()
    with meter.measure() as cpu:
        fixed = asyncio.run(
            run_target(server.url, RECEIVERS, seconds, rates=(RATE,), closed_loop=False)
        )
    row = {**fixed[f"{RATE} msg/s"], **cpu, "waited_s": waited}
    row["throughput"] = row["deliveries"] / seconds
    # Includes joining the 101 sockets and the 1 s tail: a small share at 100 msg/s.
    row["cpu_us_per_op"] = cpu["server_s"] / max(1, row["deliveries"]) * 1e6
    waited = meter.wait_quiet()
    with meter.measure() as cpu:
        loop = asyncio.run(run_target(server.url, RECEIVERS, seconds, rates=()))
    closed = {**loop["closed loop, 16 in flight"], **cpu, "waited_s": waited}
    closed["throughput"] = closed.pop("deliveries_per_s")
    closed["cpu_us_per_op"] = cpu["server_s"] / max(1, closed["deliveries"]) * 1e6
    return {ROWS[2]: row, ROWS[3]: closed}


def run_group(
    example: str, order: list[str], workdir: Path, measure: Callable[[Server], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    results = {}
    for target in order:
        print(f"  {example}: {target} ...", flush=True)
        server = start(target, example, workdir)
        try:
            results[target] = measure(server)
        finally:
            server.stop()
        time.sleep(2)  # let the stopped server's processes go before the next one starts
    return results


# ---------------------------------------------------------------------------------- summary

# (metric key, label, higher is better)
METRICS = {
    ROWS[0]: (("throughput", "increments/s", True), ("p50_ms", "p50 ms", False)),
    ROWS[1]: (("throughput", "increments/s", True), ("p50_ms", "p50 ms", False)),
    ROWS[2]: (("p50_ms", "p50 ms", False),),
    ROWS[3]: (("throughput", "deliveries/s", True), ("p50_ms", "p50 ms", False)),
}
for _row, _metrics in METRICS.items():
    METRICS[_row] = (
        *_metrics,
        ("p99_ms", "p99 ms", False),
        ("cpu_us_per_op", "server CPU µs/" + ("delivery" if "broadcast" in _row else "req"), False),
    )


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per (row, metric): each target's median over rounds and min-max, and the
    median of the per-round ratios raydo / workerd (paired: same round, minutes apart)."""
    table = []
    for row, metrics in METRICS.items():
        for key, label, higher in metrics:
            entry: dict[str, Any] = {"row": row, "metric": label, "higher_is_better": higher}
            for target in TARGETS:
                values = [r[target][row][key] for r in rounds if row in r[target]]
                entry[target] = (
                    {"median": statistics.median(values), "min": min(values), "max": max(values)}
                    if values
                    else None  # not measured (workerd-mem has no chat)
                )
            for ours, theirs in RATIOS:
                ratios = [
                    r[ours][row][key] / r[theirs][row][key]
                    for r in rounds
                    if row in r[ours] and row in r[theirs]
                ]
                ratio = statistics.median(ratios) if ratios else None
                entry[f"{ours}/{theirs}"] = ratio
                entry[f"{ours}/{theirs} ahead"] = (
                    None if ratio is None else ratio >= 1 if higher else ratio <= 1
                )
            table.append(entry)
    return table


def foreign_load(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, float]:
    """The cores other processes took during the measured rows: mean, maximum, and how many
    of the rows had more than 0.3 cores taken from them."""
    values = [r[t][row]["foreign_cores"] for r in rounds for t in TARGETS for row in r[t]]
    return {
        "mean": statistics.fmean(values),
        "max": max(values),
        "rows": len(values),
        "noisy_rows": sum(v > 0.3 for v in values),
    }


SHORT = {
    "workerd": "workerd disk",
    "workerd-mem": "workerd memory",
    "raydo": "raydo normal",
    "raydo-full": "raydo full",
}


def markdown(table: list[dict[str, Any]], header: str, foreign: dict[str, float]) -> str:
    names = [SHORT[t] for t in TARGETS] + [
        f"{SHORT[a].split()[1]} / {SHORT[b].split()[1]}" for a, b in RATIOS
    ]
    lines = [
        header,
        "",
        f"| row | metric | {' | '.join(names)} |",
        "|---|---|" + "---:|" * len(names),
    ]

    def fmt(value: dict[str, float] | None) -> str:
        if value is None:
            return "–"
        return f"{value['median']:,.0f}" if value["median"] >= 100 else f"{value['median']:.2f}"

    def fmt_ratio(entry: dict[str, Any], ours: str, theirs: str) -> str:
        ratio = entry[f"{ours}/{theirs}"]
        if ratio is None:
            return "–"
        return f"{ratio:.2f}{'' if entry[f'{ours}/{theirs} ahead'] else ' ✗'}"

    for entry in table:
        cells = [fmt(entry[t]) for t in TARGETS]
        ratios = [fmt_ratio(entry, a, b) for a, b in RATIOS]
        lines.append(f"| {entry['row']} | {entry['metric']} | {' | '.join(cells + ratios)} |")
    lines += [
        "",
        "Medians over the rounds; ratios are medians of the per-round ratios raydo / workerd;"
        " ✗ marks where raydo is not ahead (lower throughput, or higher latency or CPU)."
        f" Other processes took {foreign['mean']:.2f} cores on average during the rows"
        f" (at most {foreign['max']:.2f}; more than 0.3 in {foreign['noisy_rows']:.0f} of"
        f" {foreign['rows']:.0f} rows).",
    ]
    return "\n".join(lines) + "\n"


def chart(table: list[dict[str, Any]], out: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("Counter increments/s (higher is better)", [ROWS[0], ROWS[1]], ("increments/s",)),
        ("Counter latency, ms (lower is better)", [ROWS[0], ROWS[1]], ("p50 ms", "p99 ms")),
        (
            f"Broadcast latency to {RECEIVERS} clients, ms (lower is better)",
            [ROWS[2], ROWS[3]],
            ("p50 ms", "p99 ms"),
        ),
        ("Broadcast deliveries/s, closed loop (higher is better)", [ROWS[3]], ("deliveries/s",)),
    )
    colors = {
        "workerd": "#f38020",
        "workerd-mem": "#fbc08a",
        "raydo": "#2b6cb0",
        "raydo-full": "#90cdf4",
    }
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    for ax, (title, rows, metrics) in zip(axes.flat, panels, strict=True):
        groups = [e for e in table if e["row"] in rows and e["metric"] in metrics]
        names = [
            f"{e['row'].replace('counter, ', '').replace(f'broadcast to {RECEIVERS}, ', '')}"
            + (f"\n{e['metric']}" if len(metrics) > 1 else "")
            for e in groups
        ]
        width = 0.8 / len(TARGETS)
        for i, target in enumerate(TARGETS):
            xs = [g + (i - (len(TARGETS) - 1) / 2) * width for g in range(len(groups))]
            stats = [e[target] or {"median": 0.0, "min": 0.0, "max": 0.0} for e in groups]
            medians = [v["median"] for v in stats]
            errors = [
                [v["median"] - v["min"] for v in stats],
                [v["max"] - v["median"] for v in stats],
            ]
            bars = ax.bar(
                xs,
                medians,
                width,
                yerr=errors,
                capsize=2,
                color=colors[target],
                label=LABELS[target],
            )
            ax.bar_label(
                bars,
                labels=[
                    "n/a" if e[target] is None else f"{m:,.0f}" if m >= 100 else f"{m:.1f}"
                    for m, e in zip(medians, groups, strict=True)
                ],
                fontsize=7,
            )
        ax.set_xticks(range(len(groups)), names, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.margins(y=0.15)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(TARGETS), fontsize=9)
    fig.suptitle(f"raydo vs workerd, same machine, same run\n{subtitle}", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------- main


@dataclass
class Settings:
    rounds: int
    seconds: int


def machine(workerd_version: str) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "node": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ray": version("ray"),
        "raydo": version("raydo"),
        "workerd": workerd_version,
        "node_js": subprocess.run(
            ["node", "--version"], capture_output=True, text=True
        ).stdout.strip()
        if shutil.which("node")
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s rows")
    parser.add_argument("--rounds", type=int, help="rounds alternating the targets (3)")
    parser.add_argument("--seconds", type=int, help="seconds per row (10)")
    args = parser.parse_args()
    settings = Settings(
        rounds=args.rounds or (1 if args.quick else 3),
        seconds=args.seconds or (3 if args.quick else 10),
    )
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    info = machine(ensure_workerd())
    command = " ".join([".venv/bin/python", "bench/compare_workerd/run.py", *sys.argv[1:]])
    print(f"{command}\n{json.dumps(info)}", flush=True)

    rounds: list[dict[str, dict[str, Any]]] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="raydo-vs-workerd-") as tmp:
        workdir = Path(tmp)
        scripts = {ROWS[0]: workdir / "one.lua", ROWS[1]: workdir / "many.lua"}
        scripts[ROWS[0]].write_text(ONE_OBJECT_LUA)
        scripts[ROWS[1]].write_text(MANY_OBJECTS_LUA)
        for n in range(settings.rounds):
            order = list(TARGETS[n % len(TARGETS) :] + TARGETS[: n % len(TARGETS)])
            print(f"round {n + 1}/{settings.rounds}: {', '.join(order)}", flush=True)
            counter = run_group(
                "counter",
                order,
                workdir,
                lambda server: counter_rows(server, settings.seconds, scripts),
            )
            chat = run_group(
                "chat",
                [t for t in order if t in CHAT_TARGETS],
                workdir,
                lambda server: broadcast_rows(server, settings.seconds),
            )
            rounds.append({t: {**counter[t], **chat.get(t, {})} for t in TARGETS})

    table = summarise(rounds)
    header = (
        f"raydo vs workerd {info['workerd']}, {settings.rounds} round(s) alternating the"
        f" targets, {settings.seconds} s per row; counter: wrk -t1 -c{CONNECTIONS};"
        f" broadcast: {RECEIVERS} receivers + 1 sender (Python websockets);"
        f" {info['cores']} cores ({info['cpu']}), {time.strftime('%Y-%m-%d', time.gmtime())}."
        f" Targets: {'; '.join(f'{SHORT[t]} = {LABELS[t]}' for t in TARGETS)}."
    )
    foreign = foreign_load(rounds)
    text = markdown(table, header, foreign)
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare_workerd.md").write_text(text)
    (RESULTS / "compare_workerd.json").write_text(
        json.dumps(
            {
                "command": command,
                "machine": info,
                "settings": {
                    "rounds": settings.rounds,
                    "seconds": settings.seconds,
                    "connections": CONNECTIONS,
                    "objects": OBJECTS,
                    "receivers": RECEIVERS,
                    "rate": RATE,
                    "targets": LABELS,
                },
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "load_average_after": os.getloadavg(),
                "foreign_cores": foreign,
                "summary": table,
                "rounds": rounds,
            },
            indent=2,
        )
        + "\n"
    )
    chart(
        table,
        RESULTS / "compare_workerd.png",
        f"{info['cores']} vCPU {info['cpu']}; workerd {info['workerd']}, raydo {info['raydo']},"
        f" Ray {info['ray']}; {settings.rounds} round(s) × {settings.seconds} s per row",
    )
    for suffix in ("md", "json", "png"):
        print(f"written to {(RESULTS / f'compare_workerd.{suffix}').relative_to(REPO)}")


if __name__ == "__main__":
    main()
