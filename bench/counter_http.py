"""Counter increments over HTTP: raydo (the counter example on an embedded local Ray) beside
an in-process baseline (uvicorn + Starlette + one SQLite file per name, no Ray), in one run.

For each target: ``wrk`` with 32 connections for ``--seconds`` (10 by default) after a warm-up,
first on one object, then spread uniformly over 1,000 objects (each created beforehand).
Prints requests/s, p50 and p99 per row, the server's CPU per request (every process of
the server: for raydo the gateway, the hosts and Ray's own), the machine's load average
before the row, and the ratio raydo / baseline, and writes ``bench/results/counter_http.json``.
On this shared 2-core machine a low rate with the usual CPU per request means other work
took the cores, not a slower server.

    .venv/bin/python bench/counter_http.py [--seconds 10] [--rounds 1]

Needs ``wrk`` on the PATH (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OBJECTS = 1000
CONNECTIONS = 32

ONE_OBJECT_LUA = 'wrk.method = "POST"\n'
MANY_OBJECTS_LUA = f"""
wrk.method = "POST"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/counter/c" .. math.random(0, {OBJECTS - 1}) .. "/increment")
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            httpx.post(url + "/counter/ready/increment", timeout=5)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"server at {url} not ready in {timeout} s")


def start(kind: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    if kind == "raydo":
        app = workdir / "counter"
        if not app.exists():
            shutil.copytree(
                REPO / "examples" / "counter",
                app,
                ignore=shutil.ignore_patterns(".raydo", "__pycache__"),
            )
        args = [str(BIN / "raydo"), "dev", str(app), "--port", str(port)]
    else:
        args = [
            sys.executable,
            str(REPO / "bench" / "baseline_app.py"),
            str(port),
            str(workdir / "baseline"),
        ]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def create_objects(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for start in range(0, OBJECTS, 50):
            await asyncio.gather(
                *(client.post(f"/counter/c{i}/increment") for i in range(start, start + 50))
            )


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: Path, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    distribution = out[out.index("Latency Distribution") :]
    p50 = _ms(re.search(r"50%\s+(\S+)", distribution).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", distribution).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",  # type: ignore[dict-item]
    }


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by the process ``pid`` and every descendant of it alive."""
    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def wrk_rows(
    url: str, scripts: dict[str, Path], seconds: int, servers: dict[str, int]
) -> dict[str, dict[str, float]]:
    """One ``wrk`` row per pattern of ``scripts`` on the counter at ``url``, each after a 3 s
    warm-up, with the machine's load average before it and the CPU per request of the
    process trees ``servers`` names (label: root pid): ``cpu_us_per_req`` for all of them,
    and ``<label>_cpu_us_per_req`` for each when there are several."""
    results = {}
    for pattern, script in scripts.items():
        target = url + ("/counter/one/increment" if pattern == "one object" else "/")
        wrk(target, script, 3)  # warm-up
        load = os.getloadavg()[0]
        before = {label: server_cpu_seconds(pid) for label, pid in servers.items()}
        row = wrk(target, script, seconds)
        done = row["rps"] * seconds
        parts = {
            label: (server_cpu_seconds(pid) - before[label]) / done * 1e6
            for label, pid in servers.items()
        }
        if len(parts) > 1:
            row |= {f"{label}_cpu_us_per_req": part for label, part in parts.items()}
        row["cpu_us_per_req"] = sum(parts.values())
        row["load_average"] = load
        results[pattern] = row
    return results


def measure(
    kind: str, workdir: Path, seconds: int, scripts: dict[str, Path]
) -> dict[str, dict[str, float]]:
    proc, url = start(kind, workdir)
    try:
        asyncio.run(create_objects(url))
        return wrk_rows(url, scripts, seconds, {"server": proc.pid})
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the targets this often")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    with tempfile.TemporaryDirectory(prefix="raydo-bench-") as tmp:
        workdir = Path(tmp)
        scripts = {"one object": workdir / "one.lua", f"{OBJECTS} objects": workdir / "many.lua"}
        scripts["one object"].write_text(ONE_OBJECT_LUA)
        scripts[f"{OBJECTS} objects"].write_text(MANY_OBJECTS_LUA)
        rounds: list[dict[str, dict[str, dict[str, float]]]] = []
        for _ in range(args.rounds):
            rounds.append(
                {
                    "raydo": measure("raydo", workdir, args.seconds, scripts),
                    "baseline": measure("baseline", workdir, args.seconds, scripts),
                }
            )

    print(
        f"\ncounter increments, wrk -t1 -c{CONNECTIONS} -d{args.seconds}s, {platform.node()},"
        f" {os.cpu_count()} cores, {platform.python_version()}\n"
    )
    print(
        "| pattern | target | requests/s | p50 ms | p99 ms | non-2xx | server CPU µs/req"
        " | load | raydo / baseline |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for pattern in scripts:
        for result in rounds:
            ours, base = result["raydo"][pattern], result["baseline"][pattern]
            ratio = ours["rps"] / base["rps"]
            for name, row in (("raydo (Ray hosts)", ours), ("baseline (in-process)", base)):
                shown = f"{ratio:.2f}" if name.startswith("raydo") else ""
                print(
                    f"| {pattern} | {name} | {row['rps']:,.0f} | {row['p50_ms']:.2f} |"
                    f" {row['p99_ms']:.2f} | {row['non_2xx']:.0f} | {row['cpu_us_per_req']:.0f}"
                    f" | {row['load_average']:.1f} | {shown} |"
                )
            summary.append({"pattern": pattern, "raydo": ours, "baseline": base, "ratio": ratio})
    out = REPO / "bench" / "results" / "counter_http.json"
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "node": platform.node(),
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                },
                "seconds": args.seconds,
                "connections": CONNECTIONS,
                "rows": summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
