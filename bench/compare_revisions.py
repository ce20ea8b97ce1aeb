"""raydo at an older git revision beside the working tree, same load, same run.

A change that reshapes the core must not make it slower. This puts the two side by side on
the rows of ``bench/counter_http.py`` and ``bench/ws_broadcast.py`` (the same load
generators, through ``bench/compare_workerd``'s row functions, which also meter the server's
CPU):

1. counter, one object: ``wrk -t1 -c32`` on ``POST /counter/one/increment``;
2. counter, 1,000 objects (created first), uniformly at random;
3. broadcast, 100 receivers + 1 sender in one chat room at 100 messages/s;
4. broadcast, closed loop with 16 broadcasts in flight.

The old revision is checked out into a temporary git worktree and served from there
(``python -m gateway.cli dev`` or ``python -m raydo.gateway.cli dev``, whichever it has, with
``PYTHONPATH`` on that tree so nothing of the working tree leaks in), its own examples
included. Each round serves both, the order alternating every round; every row waits for the
machine to be quiet first. Prints a table of medians over rounds with the paired ratio
new / old, and writes ``bench/results/compare_revisions.json``.

    .venv/bin/python bench/compare_revisions.py --old 9545826            # 3 rounds, 10 s rows
    .venv/bin/python bench/compare_revisions.py --old 9545826 --quick    # 1 round, 3 s rows

Needs ``wrk`` and git.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "compare_workerd"))

from counter_http import MANY_OBJECTS_LUA, ONE_OBJECT_LUA  # noqa: E402
from run import ROWS, broadcast_rows, counter_rows  # noqa: E402
from servers import REPO, ServerProcess, free_port  # noqa: E402

RESULTS = REPO / "bench" / "results"
# (metric key, label, higher is better) per row
METRICS = (
    ("throughput", "ops/s", True),
    ("p50_ms", "p50 ms", False),
    ("p99_ms", "p99 ms", False),
    ("cpu_us_per_op", "server CPU µs/op", False),
)


class Tree:
    """One version of raydo's code: a folder holding its packages and its examples."""

    def __init__(self, label: str, root: Path) -> None:
        self.label = label
        self.root = root
        # Before the packages moved under one namespace, the CLI was the top-level gateway.
        namespaced = (root / "raydo" / "__init__.py").exists()
        self.cli = "raydo.gateway.cli" if namespaced else "gateway.cli"


class TreeServer(ServerProcess):
    """``raydo dev`` of ``tree`` on a copy of one of that tree's examples."""

    def __init__(self, tree: Tree, example: str, workdir: Path) -> None:
        self.label = f"raydo dev ({tree.label})"
        app = workdir / f"{example}-{tree.label}"
        shutil.rmtree(app, ignore_errors=True)
        shutil.copytree(
            tree.root / "examples" / example,
            app,
            ignore=shutil.ignore_patterns(".raydo", "__pycache__"),
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(tree.root))
        args = [sys.executable, "-m", tree.cli, "dev", str(app), "--port", str(self.port)]
        # In the tree's own folder: ``python -m`` puts the working directory first on the path.
        self._start(args, env, cwd=tree.root)


def checkout(rev: str, into: Path) -> Path:
    """A detached git worktree of ``rev`` under ``into``."""
    folder = into / "old"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), rev],
        check=True,
        capture_output=True,
    )
    return folder


def measure(tree: Tree, workdir: Path, seconds: int) -> dict[str, Any]:
    scripts = {ROWS[0]: workdir / "one.lua", ROWS[1]: workdir / "many.lua"}
    scripts[ROWS[0]].write_text(ONE_OBJECT_LUA)
    scripts[ROWS[1]].write_text(MANY_OBJECTS_LUA)
    results: dict[str, Any] = {}
    for example, rows in (
        ("counter", lambda s: counter_rows(s, seconds, scripts)),
        ("chat", lambda s: broadcast_rows(s, seconds)),
    ):
        print(f"  {tree.label}: {example} ...", flush=True)
        server = TreeServer(tree, example, workdir).wait()
        try:
            results.update(rows(server))
        finally:
            server.stop()
        time.sleep(2)  # let the stopped server's processes go before the next one starts
    return results


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    table = []
    for row in ROWS:
        for key, label, higher in METRICS:
            old = [r["old"][row][key] for r in rounds]
            new = [r["new"][row][key] for r in rounds]
            ratio = statistics.median(n / o for n, o in zip(new, old, strict=True))
            table.append(
                {
                    "row": row,
                    "metric": label,
                    "old": statistics.median(old),
                    "new": statistics.median(new),
                    "new/old": ratio,
                    "new ahead or even": ratio >= 0.95 if higher else ratio <= 1.05,
                }
            )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the git revision to compare against")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s rows")
    parser.add_argument("--rounds", type=int, help="rounds alternating the two trees (3)")
    parser.add_argument("--seconds", type=int, help="seconds per row (10)")
    args = parser.parse_args()
    rounds_n = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (3 if args.quick else 10)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    old_rev = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", args.old],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    new_rev = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    with tempfile.TemporaryDirectory(prefix="raydo-revs-") as tmp:
        workdir = Path(tmp)
        old_root = checkout(old_rev, workdir)
        trees = {"old": Tree(f"old {old_rev}", old_root), "new": Tree("new", REPO)}
        try:
            rounds: list[dict[str, dict[str, Any]]] = []
            for n in range(rounds_n):
                print(f"round {n + 1} of {rounds_n}", flush=True)
                order = ["old", "new"] if n % 2 == 0 else ["new", "old"]
                rounds.append({key: measure(trees[key], workdir, seconds) for key in order})
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_root)],
                check=False,
                capture_output=True,
            )

    table = summarise(rounds)
    header = (
        f"raydo {old_rev} (old) beside the working tree at {new_rev} (new), {rounds_n} round(s)"
        f" of {seconds} s rows, {platform.node()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}"
    )
    print(f"\n{header}\n")
    print("| row | metric | old | new | new / old |")
    print("|---|---|---:|---:|---:|")
    for entry in table:
        print(
            f"| {entry['row']} | {entry['metric']} | {entry['old']:,.2f} | {entry['new']:,.2f} |"
            f" {entry['new/old']:.2f} |"
        )
    out = RESULTS / "compare_revisions.json"
    out.write_text(
        json.dumps(
            {"header": header, "old": old_rev, "new": new_rev, "table": table, "rounds": rounds},
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
