"""The floods of issue 12 against a served app, with the gateway's memory before, during and
after each: what the README's security figures come from.

``raydo dev --in-process`` serves ``bench/apps/floods`` (hosts in the gateway process, so its
memory is the gateway's and the hosts'); for each flood, in order, this script reads the
process's resident memory and open files, floods it from this process, reads them at the
flood's peak, lets the clients go, waits for the gateway to settle (a few seconds of nothing)
and reads them again:

* **header**: one request whose header is 128 MiB, sent in 1 MiB writes (answered 431 after
  ``http_header_bytes``; the time to the answer is recorded);
* **half-requests**: 300 connections that each send half a request head and hold it
  (answered 408 after ``http_header_seconds``, 20 s);
* **pings**: one WebSocket client sends 250 MiB of pings and never reads a pong (closed with
  1008 after ``websocket_control_bytes`` of pongs wait);
* **first**: ``first()`` of the database binding over 900,000 rows (``--rows``) of 300 bytes.

Then ``raydo dev`` serves the same app on its embedded Ray, for the two floods aimed at a
host (the gateway's and the host's memory read apart):

* **frozen-host**: the room's host is stopped with SIGSTOP; 300 clients each POST 1 MiB to
  the room at once and leave after 10 s (past ``host_link_bytes`` the gateway answers 503 at
  once); the host is let go on (SIGCONT) before the settling;
* **host-port**: 16,000 TCP connections to the host's own port that never say HELLO, in
  waves of 1,000 held at once (cut after ``HANDSHAKE_TIMEOUT_S``, 3 s, each).

Prints a table and writes ``bench/results/floods.json``.

    .venv/bin/python bench/floods.py [--rows 900000] [--in-process-only | --host-floods-only]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
from servers import REPO, DevServer

MiB = 1024 * 1024
SETTLE_S = 5.0


def usage(pid: int) -> dict[str, float]:
    process = psutil.Process(pid)
    return {"rss_mib": round(process.memory_info().rss / MiB, 1), "fds": process.num_fds()}


def status_of(raw: bytes) -> int | None:
    if raw.startswith(b"HTTP/1.1 "):
        return int(raw[9:12])
    return None


def header_flood(port: int, pid: int) -> dict[str, Any]:
    peak = usage(pid)
    started = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: flood\r\nx-big: ")
        chunk = b"a" * MiB
        try:
            for _ in range(128):
                conn.sendall(chunk)
                peak = max(peak, usage(pid), key=lambda u: u["rss_mib"])
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before the rest was sent: the point
        try:
            answer = conn.recv(65536)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    return {
        "status": status_of(answer),
        "answered_after_s": round(time.monotonic() - started, 2),
        "peak": peak,
    }


def half_requests(port: int, pid: int, count: int = 300) -> dict[str, Any]:
    held = []
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", port), timeout=60)
        conn.sendall(b"GET / HTTP/1.1\r\nhost: flood\r\nx-half: ")
        held.append(conn)
    peak = usage(pid)
    statuses: dict[str, int] = {}
    started = time.monotonic()
    for conn in held:
        try:
            status = status_of(conn.recv(65536))
        except (ConnectionResetError, TimeoutError):
            status = None
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        conn.close()
    return {
        "statuses": statuses,
        "all_answered_after_s": round(time.monotonic() - started, 1),
        "peak": peak,
    }


def ping_flood(port: int, pid: int, total: int = 250 * MiB) -> dict[str, Any]:
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    conn.sendall(
        (
            "GET /ws HTTP/1.1\r\nhost: flood\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            f"sec-websocket-key: {key}\r\nsec-websocket-version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    payload = b"p" * 125
    frame = bytes([0x89, 0x80 | len(payload)]) + b"\0\0\0\0" + payload  # masked, mask 0
    batch = frame * (MiB // len(frame))
    sent = 0
    peak = usage(pid)
    closed_after = None
    try:
        while sent < total:
            conn.sendall(batch)
            sent += len(batch)
            if sent % (16 * MiB) < len(batch):
                peak = max(peak, usage(pid), key=lambda u: u["rss_mib"])
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        closed_after = sent
    conn.close()
    return {
        "sent_mib": round(sent / MiB),
        "closed_after_mib": closed_after and round(closed_after / MiB),
        "peak": peak,
    }


def first_over_rows(url: str, pid: int, rows: int) -> dict[str, Any]:
    seeded = httpx.post(f"{url}/seed", params={"rows": rows}, timeout=1800).json()
    before = usage(pid)
    started = time.monotonic()
    answer = httpx.get(f"{url}/first", timeout=600)
    return {
        "rows": seeded["rows"],
        "status": answer.status_code,
        "seconds": round(time.monotonic() - started, 2),
        "before_first": before,
        "peak": usage(pid),
    }


class PeakWatch:
    """Samples a process's memory every 50 ms in a thread, keeping the highest reading."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, usage(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, usage(self.pid), key=lambda u: u["rss_mib"])

    def __enter__(self) -> PeakWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def host_process(gateway_pid: int) -> psutil.Process:
    """The Ray worker under ``raydo dev`` that runs a raydo host."""
    for proc in psutil.Process(gateway_pid).children(recursive=True):
        try:
            if "HostActor" in " ".join(proc.cmdline()):
                return proc
        except psutil.NoSuchProcess:
            continue
    raise RuntimeError("no host process under the gateway")


async def _post_all(url: str, count: int, body: bytes, leave_after: float) -> dict[str, int]:
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=leave_after) as client:

        async def one() -> None:
            try:
                status = str((await client.post(f"{url}/put", content=body)).status_code)
            except httpx.TimeoutException:
                status = "left"
            except httpx.TransportError as exc:
                status = type(exc).__name__
            statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(one() for _ in range(count)))
    return statuses


def frozen_host(
    url: str, gateway_pid: int, host: psutil.Process, count: int = 300
) -> dict[str, Any]:
    assert httpx.post(f"{url}/put", content=b"x", timeout=60).text == "1"  # the room is on it
    host_before = usage(host.pid)
    host.send_signal(signal.SIGSTOP)
    try:
        with PeakWatch(gateway_pid) as watch:
            started = time.monotonic()
            statuses = asyncio.run(_post_all(url, count, b"m" * MiB, leave_after=10.0))
            seconds = time.monotonic() - started
    finally:
        host.send_signal(signal.SIGCONT)
    answer = httpx.post(f"{url}/put", content=b"xy", timeout=60)
    return {
        "statuses": statuses,
        "seconds": round(seconds, 1),
        "after_thaw": answer.text,
        "host_before": host_before,
        "peak": watch.peak,
    }


def host_port(gateway_pid: int, host: psutil.Process, total: int = 16_000) -> dict[str, Any]:
    ports = [
        c.laddr.port
        for c in host.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.ip in ("127.0.0.1", "0.0.0.0")
    ]
    host_before = usage(host.pid)
    cut, peak = 0, usage(host.pid)
    wave = 1000
    for _ in range(total // wave):
        held = []
        for _ in range(wave):
            conn = socket.socket()
            conn.settimeout(30)
            try:
                conn.connect(("127.0.0.1", ports[0]))
                held.append(conn)
            except OSError:
                conn.close()
        peak = max(peak, usage(host.pid), key=lambda u: u["rss_mib"])
        for conn in held:
            try:
                if conn.recv(1) == b"":
                    cut += 1
            except OSError:
                cut += 1
            conn.close()
    time.sleep(SETTLE_S)
    return {
        "port": ports[0],
        "connections": total,
        "cut_by_host": cut,
        "host_before": host_before,
        "host_peak": peak,
        "host_after": usage(host.pid),
        "peak": usage(gateway_pid),
    }


def measured(name: str, pid: int, flood: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    before = usage(pid)
    result = flood()
    time.sleep(SETTLE_S)
    result.update(name=name, before=before, after=usage(pid))
    print(
        f"{name:14} rss {before['rss_mib']:7.1f} -> peak {result['peak']['rss_mib']:7.1f}"
        f" -> after {result['after']['rss_mib']:7.1f} MiB;"
        f" fds {before['fds']} -> {result['after']['fds']}; "
        + json.dumps(
            {k: v for k, v in result.items() if k not in ("before", "after", "peak", "name")}
        )
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=900_000)
    parser.add_argument(
        "--in-process-only", action="store_true", help="skip the floods aimed at a Ray host"
    )
    parser.add_argument(
        "--host-floods-only", action="store_true", help="only the floods aimed at a Ray host"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raydo-floods-") as work:
        results: list[dict[str, Any]] = []
        if not args.host_floods_only:
            server = DevServer(
                REPO / "bench" / "apps" / "floods", Path(work), in_process=True
            ).wait()
            try:
                pid, port, url = server.proc.pid, server.port, server.url
                httpx.get(url)
                results += [
                    measured("header", pid, lambda: header_flood(port, pid)),
                    measured("half-requests", pid, lambda: half_requests(port, pid)),
                    measured("pings", pid, lambda: ping_flood(port, pid)),
                    measured("first", pid, lambda: first_over_rows(url, pid, args.rows)),
                ]
                assert httpx.get(url).status_code == 200, "the gateway stopped serving"
            finally:
                server.stop()
        if not args.in_process_only:
            server = DevServer(REPO / "bench" / "apps" / "floods", Path(work)).wait(timeout=180)
            try:
                pid, url = server.proc.pid, server.url
                httpx.post(f"{url}/put", content=b"x", timeout=120)
                host = host_process(pid)
                results += [
                    measured("frozen-host", pid, lambda: frozen_host(url, pid, host)),
                    measured("host-port", pid, lambda: host_port(pid, host)),
                ]
                for result in results[-2:]:
                    result["host_after"] = usage(host.pid)
                    print(
                        f"  host rss {result['host_before']['rss_mib']}"
                        f" -> {result['host_after']['rss_mib']} MiB"
                    )
                assert httpx.get(url).status_code == 200, "the gateway stopped serving"
            finally:
                server.stop()
    out = REPO / "bench" / "results" / "floods.json"
    out.write_text(
        json.dumps(
            {"machine": platform.platform(), "cpus": os.cpu_count(), "floods": results}, indent=2
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
