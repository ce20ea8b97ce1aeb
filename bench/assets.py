"""Static assets served by the gateway beside a request the app's handler answers, on
``raydo dev --in-process`` (assets never touch Ray: the gateway answers them itself).

``bench/apps/assets`` gets a folder of a 1 KiB stylesheet, a 10 KiB page (served at
``/page``, html_handling's ``auto-trailing-slash``) and a 256 KiB image. For each, ``wrk
-t1`` for ``--seconds``: a plain ``GET``, and the browser's revalidation (``If-None-Match``
with the file's ETag, answered 304 without a body); beside them ``GET /hello``, a short text
from the app's own handler.

Prints a table and writes ``bench/results/assets.json``.

    .venv/bin/python bench/assets.py [--seconds 10] [--rounds 2]

Needs ``wrk`` on the PATH (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
from counter_http import CONNECTIONS, wrk  # the counter benchmark's wrk run and parsing
from servers import REPO, DevServer

FILES = {"style.css": 1024, "page.html": 10 * 1024, "image.png": 256 * 1024}
PATHS = {"style.css": "/style.css", "page.html": "/page", "image.png": "/image.png"}


def script(path: str, etag: str | None = None) -> str:
    header = f"wrk.headers['If-None-Match'] = '{etag}'\n" if etag else ""
    return header + f'request = function()\n  return wrk.format(nil, "{path}")\nend\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="raydo-bench-") as tmp:
        workdir = Path(tmp)
        app = workdir / "app"
        shutil.copytree(REPO / "bench" / "apps" / "assets", app)
        (app / "public").mkdir()
        for name, size in FILES.items():
            (app / "public" / name).write_bytes(os.urandom(size // 2).hex().encode())
        server = DevServer(app, workdir, in_process=True).wait("/hello")
        try:
            scripts: dict[str, Path] = {}
            for name, path in PATHS.items():
                etag = httpx.get(server.url + path).headers["etag"]
                scripts[f"{name} 200"] = workdir / f"{name}.lua"
                scripts[f"{name} 200"].write_text(script(path))
                scripts[f"{name} 304"] = workdir / f"{name}-304.lua"
                scripts[f"{name} 304"].write_text(script(path, etag))
            scripts["app handler"] = workdir / "hello.lua"
            scripts["app handler"].write_text(script("/hello"))
            for path in scripts.values():  # warm-up
                wrk(server.url, path, 2)
            for _ in range(args.rounds):
                rounds.append(
                    {label: wrk(server.url, path, args.seconds) for label, path in scripts.items()}
                )
        finally:
            server.stop()

    print(
        f"\nstatic assets, raydo dev --in-process, {platform.node()},"
        f" {os.cpu_count()} cores, {platform.python_version()}\n"
    )
    print("| round | request | requests/s | p50 ms | p99 ms | non-2xx/3xx |")
    print("|---|---|---:|---:|---:|---:|")
    for n, result in enumerate(rounds, start=1):
        for label, row in result.items():
            print(
                f"| {n} | {label} | {row['rps']:,.0f} | {row['p50_ms']:.2f} |"
                f" {row['p99_ms']:.2f} | {row['non_2xx']:.0f} |"
            )
    out = REPO / "bench" / "results" / "assets.json"
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "node": platform.node(),
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                },
                "files": FILES,
                "wrk_connections": CONNECTIONS,
                "seconds": args.seconds,
                "rounds": rounds,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
