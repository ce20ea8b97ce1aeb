"""The counter example served by real ``raydo serve`` processes, driven by real HTTP clients."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from raydo.gateway.config import load_config
from raydo.storage.folder_lock import RUNTIME_FILES
from tests.cluster import RAYDO, Server

Gateway = Callable[..., Server]


async def test_200_concurrent_increments_on_one_object_end_at_200(
    app_copy: Callable[[str], Path], gateway: Gateway
) -> None:
    server = gateway(app_copy("counter"))
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        replies = await asyncio.gather(*(client.post("/counter/hot/increment") for _ in range(200)))
        assert all(r.status_code == 200 for r in replies)
        final = (await client.get("/counter/hot")).json()
        assert final == {"name": "hot", "value": 200}
    assert sorted(r.json()["value"] for r in replies) == list(range(1, 201))


async def test_two_gateway_processes_share_ids_and_objects(
    app_copy: Callable[[str], Path], gateway: Gateway
) -> None:
    app = app_copy("counter")
    first, second = gateway(app), gateway(app)

    async with (
        httpx.AsyncClient(base_url=first.url, timeout=60) as a,
        httpx.AsyncClient(base_url=second.url, timeout=60) as b,
    ):
        ids_a = [(await a.get(f"/counter/{n}/id")).json()["id"] for n in ("x", "y", "ünï")]
        ids_b = [(await b.get(f"/counter/{n}/id")).json()["id"] for n in ("x", "y", "ünï")]
        assert ids_a == ids_b
        assert all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids_a)
        assert len(set(ids_a)) == 3
        replies = await asyncio.gather(
            *(client.post("/counter/shared/increment") for client in [a, b] * 50)
        )
        assert sorted(r.json()["value"] for r in replies) == list(range(1, 101))
        assert (await b.get("/counter/shared")).json()["value"] == 100


def test_fetch_passes_method_path_query_headers_and_body(
    app_copy: Callable[[str], Path], gateway: Gateway
) -> None:
    server = gateway(app_copy("counter"))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        reply = client.post("/counter/f/fetch?by=5", headers={"x-test": "1"}, content=b"ignored")
        assert reply.status_code == 200
        assert reply.json() == {"name": "f", "value": 5}
        assert reply.headers["content-type"] == "application/json"
        assert client.get("/counter/f/fetch").json() == {"name": "f", "value": 5}


def test_hostile_http_input_gets_clear_errors_and_loses_nothing(
    app_copy: Callable[[str], Path], gateway: Gateway
) -> None:
    app = app_copy("counter")
    server = gateway(app)
    storage = load_config(app).storage
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/counter/safe/increment").json()["value"] == 1

        # A 10 MB body, declared or chunked, streams to the object, whose fetch never reads
        # it: it costs one stream window and the object is unharmed. (A body read whole stays
        # under request_bytes, and one past stream_bytes is refused: tests/streams.)
        big = b"x" * (10 * 1024 * 1024)
        reply = client.post("/counter/safe/fetch", content=big)
        assert reply.status_code == 200 and reply.json()["value"] == 2

        def chunks() -> object:
            for _ in range(10):
                yield b"y" * (1024 * 1024)

        reply = client.post("/counter/safe/fetch", content=chunks())  # type: ignore[arg-type]
        assert reply.status_code == 200 and reply.json()["value"] == 3

        # Names that look like paths or carry NUL bytes are just names (hashed, never paths).
        for name in ("%2E%2E", "%00", "a%00b", "etc%5Cpasswd", "%F0%9F%94%A5"):
            reply = client.post(f"/counter/{name}/increment")
            assert reply.status_code == 200, (name, reply.text)
            assert reply.json()["value"] == 1

        # An oversized name is refused with the limit's name.
        reply = client.post(f"/counter/{'n' * 2000}/increment")
        assert reply.status_code == 413
        assert reply.json()["limit"] == "name_bytes"

        # An exception inside the object is a 500 that names it; nothing was written.
        reply = client.post("/counter/safe/fetch?by=notanumber")
        assert reply.status_code == 500
        assert reply.json()["error"] == "object"
        assert "ValueError" in reply.json()["message"]

        assert client.get("/counter/safe").json()["value"] == 3
        assert client.get("/no/such/route").status_code == 404
        assert client.delete("/counter/safe/increment").status_code == 405

    # Besides the runtime's lock on its folder, only object files.
    files = [p for p in storage.rglob("*") if p.is_file() and p.name not in RUNTIME_FILES]
    assert files, "the objects wrote their files"
    for path in files:
        relative = path.relative_to(storage).parts
        assert relative[0] == "COUNTER"
        assert re.fullmatch(r"[0-9a-f]{2}", relative[1])
        assert re.fullmatch(r"[0-9a-f]{64}\.sqlite(-wal|-shm)?", relative[2])


async def test_serve_with_two_workers_shares_the_hosts(
    app_copy: Callable[[str], Path], gateway: Gateway
) -> None:
    server = gateway(app_copy("counter"), workers=2)
    assert server.proc is not None
    workers = psutil.Process(server.proc.pid).children(recursive=True)
    assert len([p for p in workers if "spawn" in " ".join(p.cmdline())]) == 2

    # Separate clients open separate connections, spread over both worker processes.
    clients = [httpx.AsyncClient(base_url=server.url, timeout=60) for _ in range(10)]
    try:
        replies = await asyncio.gather(
            *(c.post("/counter/both/increment") for c in clients for _ in range(10))
        )
        assert sorted(r.json()["value"] for r in replies) == list(range(1, 101))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def test_serve_started_again_after_an_edit_runs_the_new_code_on_the_standing_hosts(
    app_copy: Callable[[str], Path],
    gateway: Gateway,
    kill_hosts_after: Callable[[Path], Path],
) -> None:
    app = kill_hosts_after(app_copy("counter"))
    first = gateway(app)
    assert httpx.post(first.url + "/counter/a/increment", timeout=30).json()["value"] == 1
    first.stop()  # the hosts stay: they belong to the cluster
    source = app / "counter.py"
    text = source.read_text()
    edited = text.replace(
        'self.ctx.storage.get("n", 0) + by', 'self.ctx.storage.get("n", 0) + by * 10'
    )
    assert edited != text
    source.write_text(edited)

    second = gateway(app)
    # The object keeps its data and runs the new code: 1 + 10.
    assert httpx.post(second.url + "/counter/a/increment", timeout=30).json()["value"] == 11
    assert "ran older code of the app: it took the new code" in second.output()
    second.stop()
    third = gateway(app)  # nothing changed since: nothing is reloaded
    assert httpx.post(third.url + "/counter/a/increment", timeout=30).json()["value"] == 21
    assert "ran older code" not in third.output()


def test_environment_variables_and_secrets_reach_objects_under_serve(
    app_copy: Callable[[str], Path],
    gateway: Gateway,
    kill_hosts_after: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Set here, after the session's cluster started: its raylet (which starts the hosts)
    # never had them; only `raydo serve`'s own environment does.
    monkeypatch.setenv("APP_GREETING", "hello")
    monkeypatch.setenv("APP_API_KEY", "s3cret")
    app = kill_hosts_after(app_copy("environ"))
    (app / ".dev.vars").write_text("APP_API_KEY=from-the-dev-file\n")  # never read by serve
    server = gateway(app)
    assert httpx.get(server.url + "/read", timeout=30).json() == {
        "greeting": "hello",
        "greeting_at_import": "hello",
        "secret": "s3cret",
    }


def test_serve_refuses_to_start_without_a_required_secret(
    app_copy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APP_API_KEY", raising=False)
    app = app_copy("environ")
    (app / ".dev.vars").write_text("APP_API_KEY=from-the-dev-file\n")
    run = subprocess.run(
        [RAYDO, "serve", str(app), "--address", "127.0.0.1:1", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert "secrets.required" in run.stderr and "APP_API_KEY" in run.stderr, run.stderr
    assert "not set in the environment of raydo serve" in run.stderr, run.stderr
