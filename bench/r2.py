"""Blob bucket throughput beside the same work done directly on the filesystem, in one run.

For 1 KB and 10 MB objects, put and get, three ways each round:

* **binding**: ``env.FILES.put`` / ``get`` + ``read()`` called in the gateway process (no
  HTTP), filesystem backend: what the bucket itself costs (index, fsync, rename, MD5);
* **HTTP**: the same through presigned URLs served by the gateway (uvicorn on 127.0.0.1, one
  gateway process), from an httpx client in a child process (one keep-alive connection,
  one request at a time), so client and server each have a core;
* **filesystem**: the same bytes written to a temp file, fsync'd and renamed into place, or
  read back, with plain ``open``: the floor.

1 KB objects are put and got ``--small`` times one after another (so MB/s is really ops/s
times 1 KB); 10 MB objects ``--large`` times. Prints MB/s and the ratio to the filesystem,
and writes ``bench/results/r2.json``.

    .venv/bin/python bench/r2.py [--small 2000] [--large 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from raydo.actors import Env  # noqa: E402
from raydo.actors.placement import LocalPlacement  # noqa: E402
from raydo.gateway.app import Gateway  # noqa: E402
from raydo.gateway.config import load_config  # noqa: E402

MB = 1_000_000
SIZES = {"1 KB": 1_000, "10 MB": 10 * MB}
APP = """
from starlette.applications import Starlette
app = Starlette()
"""
CONFIG = """
name = "r2bench"
main = "app:app"
[[r2_buckets]]
binding = "FILES"
bucket_name = "bench"
"""


class App:
    """The gateway served by uvicorn in this loop, and where."""

    def __init__(self, env: Env, url: str) -> None:
        self.env = env
        self.url = url


@asynccontextmanager
async def serve(folder: Path) -> AsyncIterator[App]:
    gateway = Gateway(load_config(folder), LocalPlacement)
    config = uvicorn.Config(gateway, host="127.0.0.1", port=0, log_level="warning")
    listener = config.bind_socket()
    # Without it, client and server sharing one loop meet Nagle's algorithm and delayed ACKs:
    # every request on a kept-alive connection then waits about 40 ms.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        yield App(gateway.env, url)
    finally:
        server.should_exit = True
        await serving


async def timed(count: int, one: Callable[[int], Awaitable[None]]) -> float:
    start = time.perf_counter()
    for i in range(count):
        await one(i)
    return time.perf_counter() - start


def fs_put(folder: Path, data: bytes) -> Callable[[int], Awaitable[None]]:
    async def one(i: int) -> None:
        tmp = folder / f"tmp-{i}"
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / f"k{i}")

    return one


def fs_get(folder: Path, size: int) -> Callable[[int], Awaitable[None]]:
    async def one(i: int) -> None:
        with (folder / f"k{i}").open("rb") as f:
            assert len(f.read()) == size

    return one


def binding_put(app: App, data: bytes) -> Callable[[int], Awaitable[None]]:
    async def one(i: int) -> None:
        await app.env.FILES.put(f"b/k{i}", data)

    return one


def binding_get(app: App, size: int) -> Callable[[int], Awaitable[None]]:
    async def one(i: int) -> None:
        found = await app.env.FILES.get(f"b/k{i}")
        assert len(await found.read()) == size

    return one


async def http_timed(app: App, op: str, size: int, count: int) -> float:
    """Seconds an httpx client in a child process takes for ``count`` presigned requests."""
    method = "PUT" if op == "put" else "GET"
    urls = [app.url + app.env.FILES.create_presigned_url(f"h/k{i}", method) for i in range(count)]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        op,
        "--size",
        str(size),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate(json.dumps(urls).encode())
    assert child.returncode == 0, out
    return float(json.loads(out)["seconds"])


def client(op: str, size: int) -> None:
    """The child's side of :func:`http_timed`: URLs on stdin, seconds on stdout."""
    urls = json.loads(sys.stdin.read())
    data = os.urandom(size)
    with httpx.Client(timeout=120) as http:
        start = time.perf_counter()
        for url in urls:
            if op == "put":
                reply = http.put(url, content=data)
                assert reply.status_code == 200, reply.text
            else:
                reply = http.get(url)
                assert reply.status_code == 200 and len(reply.content) == size
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds}))


async def run(small: int, large: int, rounds: int) -> list[dict[str, Any]]:
    base = Path(tempfile.mkdtemp(prefix="r2bench-"))
    (base / "app").mkdir()
    (base / "app" / "app.py").write_text(APP)
    (base / "app" / "raydo.toml").write_text(CONFIG)
    rows: list[dict[str, Any]] = []
    try:
        async with serve(base / "app") as app:
            for round_ in range(1, rounds + 1):
                for label, size in SIZES.items():
                    count = small if size < MB else large
                    data = os.urandom(size)
                    folder = base / f"plain-{round_}-{size}"
                    folder.mkdir()
                    for op in ("put", "get"):
                        seconds = {
                            "filesystem": await timed(
                                count, fs_put(folder, data) if op == "put" else fs_get(folder, size)
                            ),
                            "binding": await timed(
                                count,
                                binding_put(app, data) if op == "put" else binding_get(app, size),
                            ),
                            "HTTP (presigned)": await http_timed(app, op, size, count),
                        }
                        floor = size * count / seconds["filesystem"] / MB
                        for way, spent in seconds.items():
                            rate = size * count / spent / MB
                            rows.append(
                                {
                                    "round": round_,
                                    "size": label,
                                    "op": op,
                                    "way": way,
                                    "count": count,
                                    "seconds": round(spent, 3),
                                    "mb_per_s": round(rate, 2),
                                    "ops_per_s": round(count / spent, 1),
                                    "ratio_to_filesystem": round(rate / floor, 3),
                                }
                            )
                    for start in range(0, count, 1000):  # 1,000 keys per delete at most
                        done = range(start, min(count, start + 1000))
                        await app.env.FILES.delete([f"b/k{i}" for i in done])
                        await app.env.FILES.delete([f"h/k{i}" for i in done])
                    shutil.rmtree(folder)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=2000, help="1 KB objects per op and way")
    parser.add_argument("--large", type=int, default=20, help="10 MB objects per op and way")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--client", choices=["put", "get"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.size)
        return
    rows = asyncio.run(run(args.small, args.large, args.rounds))
    print(f"{'round':>5} {'size':>6} {'op':>4} {'way':>17} {'MB/s':>9} {'ops/s':>9} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['round']:>5} {r['size']:>6} {r['op']:>4} {r['way']:>17} {r['mb_per_s']:>9.2f}"
            f" {r['ops_per_s']:>9.1f} {r['ratio_to_filesystem']:>6.2f}"
        )
    out = REPO / "bench" / "results" / "r2.json"
    out.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "args": vars(args),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
