"""The HTTP front door fuzzed (issue 12): thousands of malformed requests against an app with
every binding, from a real client library (httpx) and, for what httpx will not send, from raw
sockets. Each is answered without a 5xx and without hanging (malformed heads with a 4xx), and
afterwards the gateway holds about the memory and the open files it held before, and serves.

Hypothesis generates the requests (derandomized: the same cases every run, and a failure
shrinks to its smallest request). Its examples run in a worker thread with blocking clients,
while the test's event loop serves the app.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raydo.gateway.testing import TestApp, start_app
from tests.polling import as_async, poll

MiB = 1024 * 1024
CLIENT_CASES = 1500
RAW_CASES = 1500
WARM_UP_CASES = 300
"""Cases of each pass run before memory is first read: the first requests of a kind make
caches, pools and the fuzzer's own state, which are not a leak; a leak grows with every
request after them (36 KiB each, as a host's port once leaked, is 105 MiB here)."""
ANSWER_SECONDS = 15.0
"""Longer than any bound of the fuzzed app (its heads and bodies get 2 s): past it, a hang."""

FUZZ_LIMITS = """
[limits]
http_header_seconds = 2
http_body_idle_seconds = 2
http_header_bytes = 16384
http_target_bytes = 4096
request_bytes = 1048576
"""

_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


def fuzz_settings(cases: int) -> settings:
    return settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def resources() -> tuple[int, int]:
    """This process's (resident bytes, open file descriptors): the gateway runs in it.

    Garbage is collected and malloc's free lists handed back to the kernel first, so what is
    compared is memory still held, not memory freed but kept by the allocator.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return rss, len(os.listdir("/proc/self/fd"))


# ---- what httpx sends -------------------------------------------------------------------

_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
_TOKEN = st.text(
    alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFXYZ", min_size=1, max_size=20
)


def _not_framing(name: str) -> bool:
    """A name httpx frames the message by, which h11 refuses to send with a body that does not
    match it: the raw pass sends those (the client pass would test the client, not the
    server)."""
    return name.lower() not in ("content-length", "transfer-encoding", "host")


_ROUTES = ["/room/a", "/room/../db", "/db", "/kv", "/files", "/jobs", "/_raydo/r2/FILES", "/"]
_HEADER_NAMES = [
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "content-type",
    "content-disposition",
    "content-encoding",
    "upgrade",
    "connection",
    "expect",
    "cookie",
    "x-forwarded-for",
    "origin",
    "authorization",
]
_HEADER_VALUES = st.one_of(
    st.text(_LATIN1, max_size=80).map(str.strip),
    st.sampled_from(
        [
            "bytes=" + "9" * 5000 + "-",
            "bytes=0-" + "9" * 5000,
            "bytes=-" + "9" * 5000,
            "bytes=5-1",
            "bytes=--",
            "bytes=0-0,-1",
            "items=0-5",
            '"' * 300,
            "*",
            "Mon, 99 Foo 9999 99:99:99 GMT",
            "websocket",
            "100-continue",
            "text/html; charset=" + "x" * 500,
            "attachment; filename*=UTF-8''%ff%fe",
            "gzip, br, zstd, identity",
        ]
    ),
)


@st.composite
def client_requests(draw: st.DrawFn, base_url: str, presigned: list[str]) -> httpx.Request:
    method = draw(
        st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
        | _TOKEN.map(str.upper)
    )
    target = draw(st.sampled_from(_ROUTES + presigned))
    target += draw(st.text(_PRINTABLE, max_size=40).map(lambda s: s.replace("#", "%23")))
    params = draw(
        st.dictionaries(
            st.sampled_from(["key", "method", "expires", "signature", "bucket", "x"]) | _TOKEN,
            st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
            max_size=4,
        )
    )
    headers = draw(
        st.lists(
            st.tuples(st.sampled_from(_HEADER_NAMES) | _TOKEN.filter(_not_framing), _HEADER_VALUES),
            max_size=6,
        )
    )
    body = draw(st.binary(max_size=3000))
    url = httpx.URL(base_url + target)
    if params:
        url = url.copy_merge_params(params)
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return httpx.Request(method, url, headers=raw, content=body or None)


# ---- what only a raw socket sends ---------------------------------------------------------

_RAW_TARGETS = [b"/db", b"/kv?key=k", b"/files?key=f", b"/room/a", b"/_raydo/r2/FILES?key=f", b"*"]


@st.composite
def raw_requests(draw: st.DrawFn) -> tuple[bytes, bool]:
    """``(bytes to send, whether the head is malformed)``: a malformed head must be answered
    4xx; anything else with no 5xx (or not at all when its body ends early)."""
    malformed = False
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT"]) | st.binary(min_size=1, max_size=12))
    if not re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+", method):
        malformed = True
    target = draw(st.sampled_from(_RAW_TARGETS))
    if draw(st.booleans()):
        junk = draw(st.binary(max_size=30))
        target += junk
        if re.search(rb"[\x00-\x20\x7f]", junk):
            malformed = True
    version = draw(
        st.sampled_from(
            [
                b"HTTP/1.1",
                b"HTTP/1.0",
                b"HTTP/1.1",
                b"HTTP/2.0",
                b"HTTP/1.x",
                b"",
                b"http/1.1",
                b"HTTP/1.1 extra",
            ]
        )
    )
    if version not in (b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b""):  # 2.0, 0.9: as 1.1
        malformed = True
    lines = [method + b" " + target + (b" " + version if version else b"")]
    lines.append(b"host: fuzz")
    body = b""
    framing = draw(
        st.sampled_from(
            [
                "none",
                "length",
                "short",
                "chunked",
                "bad-chunk",
                "huge-chunk",
                "both",
                "bad-length",
                "two-lengths",
            ]
        )
    )
    payload = draw(st.binary(max_size=200))
    if framing == "length":
        lines.append(b"content-length: %d" % len(payload))
        body = payload
    elif framing == "short":  # says more than it sends, then the client stops writing
        lines.append(b"content-length: %d" % (len(payload) + 10))
        body = payload
    elif framing == "chunked":
        lines.append(b"transfer-encoding: chunked")
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload) if payload else b"0\r\n\r\n"
    elif framing == "bad-chunk":
        lines.append(b"transfer-encoding: chunked")
        body = draw(
            st.sampled_from(
                [
                    b"zz\r\nab\r\n0\r\n\r\n",
                    b"5\r\nab\r\n",
                    b"-1\r\n\r\n",
                    b"5;" + b"x" * 9000 + b"\r\n",
                ]
            )
        )
    elif framing == "huge-chunk":
        lines.append(b"transfer-encoding: chunked")
        body = b"f" * draw(st.integers(17, 5000)) + b"\r\n"
    elif framing == "both":
        lines += [b"content-length: 3", b"transfer-encoding: chunked"]
        body = b"0\r\n\r\n"
    elif framing == "bad-length":
        lines.append(
            b"content-length: "
            + draw(st.sampled_from([b"-1", b"abc", b"9" * 5000, b"1 2", b"0x10", b""]))
        )
        malformed = True
    elif framing == "two-lengths":
        lines += [b"content-length: 1", b"content-length: 2"]
        body = b"ab"
        malformed = True
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(
            st.sampled_from(
                ["ok", "no-colon", "space-before-colon", "nul", "fold", "ctl", "empty-name"]
            )
        )
        value = draw(st.binary(max_size=40).map(lambda b: re.sub(rb"[\r\n\x00]", b"", b)))
        if kind == "ok":
            lines.append(b"x-fuzz: " + re.sub(rb"[\x00-\x08\x0a-\x1f\x7f]", b"", value))
            continue
        malformed = True
        lines.append(
            {
                "no-colon": b"x-no-colon " + value,
                "space-before-colon": b"x-space : " + value,
                "nul": b"x-nul: a\x00b",
                "fold": b"x-fold: a\r\n\tfolded",
                "ctl": b"x-ctl\x01: " + value,
                "empty-name": b": " + value,
            }[kind]
        )
    return b"\r\n".join(lines) + b"\r\n\r\n" + body, malformed


def send_raw(port: int, data: bytes) -> bytes:
    """Send ``data``, stop writing, and read until the server closes (or fail as a hang)."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_SECONDS) as conn:
        try:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it was all sent: the answer may still be there to read
        received = b""
        started = time.monotonic()
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            assert time.monotonic() - started < ANSWER_SECONDS, "the answer never ended"
        return received


def fuzz(
    base_url: str,
    port: int,
    presigned: list[str],
    client_cases: int = CLIENT_CASES,
    raw_cases: int = RAW_CASES,
) -> dict[str, int]:
    """Run both passes; the number of answers by status class, for the test to check."""
    seen: dict[str, int] = {}

    with httpx.Client(base_url=base_url, timeout=ANSWER_SECONDS) as client:

        @fuzz_settings(client_cases)
        @given(client_requests(base_url, presigned))
        def client_pass(request: httpx.Request) -> None:
            try:
                answer = client.send(request)
            except httpx.RemoteProtocolError:
                seen["closed"] = seen.get("closed", 0) + 1
                return  # refused and closed mid-request (a body past a limit): no answer
            assert answer.status_code < 500, (request, answer.status_code, answer.text[:300])
            seen[f"{answer.status_code // 100}xx"] = (
                seen.get(f"{answer.status_code // 100}xx", 0) + 1
            )

        client_pass()

    @fuzz_settings(raw_cases)
    @given(raw_requests())
    def raw_pass(case: tuple[bytes, bool]) -> None:
        data, malformed = case
        answer = send_raw(port, data)
        statuses = [int(s) for s in _STATUS.findall(answer)]
        assert all(s < 500 for s in statuses), (data[:300], answer[:300])
        if malformed:
            assert statuses and 400 <= statuses[-1] < 500, (data[:300], answer[:300])
        seen["raw"] = seen.get("raw", 0) + 1

    raw_pass()
    return seen


async def test_thousands_of_malformed_requests_are_refused_and_leave_nothing_behind(
    app_copy: Callable[[str], Path],
) -> None:
    app_dir = app_copy("everything")
    with (app_dir / "raydo.toml").open("a") as config:
        config.write(FUZZ_LIMITS)

    async with start_app(app_dir) as app:
        port = int(app.url.rsplit(":", 1)[1])
        await warm_up(app)
        presigned = [
            (await app.http.post("/files", params={"key": "f", "method": method})).json()["url"]
            for method in ("GET", "PUT", "HEAD", "DELETE")
        ]
        await anyio.to_thread.run_sync(fuzz, app.url, port, presigned, WARM_UP_CASES, WARM_UP_CASES)
        rss_before, fds_before = resources()

        seen = await anyio.to_thread.run_sync(fuzz, app.url, port, presigned)

        assert seen.get("raw") == RAW_CASES
        assert seen.get("4xx", 0) > CLIENT_CASES // 4, seen  # most of them are refused
        # The gateway lets go of every connection, and of the memory they held.
        await poll(as_async(resources), lambda now: now[1] <= fds_before + 8, timeout=30)
        rss_after, _ = resources()
        assert rss_after - rss_before < 64 * MiB, (rss_before, rss_after)
        await warm_up(app)


async def warm_up(app: TestApp) -> None:
    """One well-formed request to every binding: the app serves."""
    http = app.http
    assert (await http.post("/room/a", content=b"n")).status_code == 200
    assert (await http.post("/db", content=b"r")).status_code == 200
    assert (await http.put("/kv", params={"key": "k"}, content=b"v")).status_code == 204
    assert (await http.put("/files", params={"key": "f"}, content=b"b")).status_code == 204
    assert (await http.post("/jobs", content=b"j")).status_code == 202
