"""``raydo deploy`` to a two-node cluster whose nodes share no folder: the app's code and its
Python dependencies (a wheel it carries, named in its requirements.txt) reach hosts on both
nodes from Ray's copies, and a new version is rolled out host by host while a client's
WebSocket stays connected through the gateway.

The dependency is installed nowhere but in the environment Ray sets up for the deployed app, so
a host that answers with its version imported it from there."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.cluster import RAYDO, Server, free_port, quiet_env, serve
from tests.two_nodes import Node, two_nodes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DEPENDENCY = "raydo_deploy_probe_dependency"

ROOM = f"""
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from raydo import DurableObject


def dependency_version() -> str:
    # Imported here, not at the top: the gateway loads this module too, and only the
    # hosts' environment (Ray's, for the deployed app) has the dependency.
    import {DEPENDENCY}

    return str({DEPENDENCY}.VERSION)


class Room(DurableObject):
    async def fetch(self, request: Request) -> Response:
        if request.url.path.endswith("/ws"):
            return self.ctx.accept_websocket(request)
        return JSONResponse({{"version": dependency_version()}})

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        ws.send(f"{{dependency_version()}}:{{message!s}}")
"""

APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute

MAIN = "{main}"


async def which(request):
    return PlainTextResponse(MAIN)


async def room(request):
    return await request.state.env.ROOM.get_by_name(request.path_params["name"]).fetch(request)


async def join(websocket):
    await websocket.state.env.ROOM.get_by_name(websocket.path_params["name"]).fetch(websocket)


app = Starlette(
    routes=[
        Route("/main", which),
        Route("/rooms/{{name}}", room),
        WebSocketRoute("/rooms/{{name}}/ws", join),
    ]
)
"""


def build_wheel(into: Path, version: str, *, body: str = "") -> Path:
    """A pure-Python wheel of the probe dependency, written with the standard library (pip
    installs it offline); ``body`` goes first in its ``__init__.py``."""
    into.mkdir(parents=True, exist_ok=True)
    info = f"{DEPENDENCY}-{version}.dist-info"
    files = {
        f"{DEPENDENCY}/__init__.py": f'{body}VERSION = "{version}"\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {DEPENDENCY}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: raydo-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{name},sha256={encoded},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = into / f"{DEPENDENCY}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def write_app(folder: Path, name: str, version: str, *, main: str = "1") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "raydo.toml").write_text(
        f'name = "{name}"\nmain = "app:app"\nstorage = ".raydo"\n\n'
        '[[durable_objects.bindings]]\nname = "ROOM"\nclass_name = "room:Room"\nshards = 2\n'
        "idle_timeout_s = 3600\n"
    )
    (folder / "app.py").write_text(APP.format(main=main))
    (folder / "room.py").write_text(ROOM)
    shutil.rmtree(folder / "wheels", ignore_errors=True)
    wheel = build_wheel(folder / "wheels", version)
    (folder / "requirements.txt").write_text(f"# carried in the folder\n./wheels/{wheel.name}\n")


def raydo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAYDO, *args], env=quiet_env(), capture_output=True, text=True, timeout=900
    )


def status(app: Path, address: str) -> dict[str, Any]:
    done = raydo("status", str(app), "--address", address, "--json")
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Node, Node]]:
    with two_nodes("rdd") as nodes:
        yield nodes


async def test_a_deploy_ships_code_and_dependencies_to_both_nodes_and_keeps_sockets_open(
    cluster: tuple[Node, Node], tmp_path: Path
) -> None:
    head, _worker = cluster
    address = head.cluster.address
    name = f"deployed-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "source"
    write_app(source, name, "1.0")
    assert (
        DEPENDENCY
        not in subprocess.run(
            [sys.executable, "-m", "pip", "list"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )  # the dependency is in no environment of this machine but Ray's for the app

    first = raydo("deploy", str(source), "--address", address)
    assert first.returncode == 0, first.stderr
    assert "dependencies: 1 wheel(s) carried, 0 line(s) for pip" in first.stdout
    assert sorted(line for line in first.stdout.splitlines() if line.startswith("  ")) == [
        "  ROOM/shard/0: started",
        "  ROOM/shard/1: started",
    ]
    # The gateway serves from a folder of its own, without the wheel; the source is gone.
    served = tmp_path / "served"
    shutil.copytree(source, served, ignore=shutil.ignore_patterns("wheels"))
    shutil.rmtree(source)
    hosts = status(served, address)["hosts"]
    assert len({host["node"] for host in hosts}) == 2, hosts  # one host on each node

    server: Server = serve(served, head.cluster, tmp_path)
    try:
        rooms = [f"r{i}" for i in range(8)]  # over both shards, so over both nodes
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for room in rooms:
                reply = client.get(f"/rooms/{room}")
                assert reply.status_code == 200, reply.text
                assert reply.json()["version"] == "1.0"
            assert client.get("/main").text == "1"
        url = f"ws://127.0.0.1:{server.port}/rooms/r0/ws"
        async with websockets.connect(url, open_timeout=120) as ws:
            await ws.send("before")
            assert await asyncio.wait_for(ws.recv(), 120) == "1.0:before"

            # Version 2 of the dependency and of main, deployed from another folder: every
            # host is drained and restarted on it, one at a time, while this socket stays
            # open in the gateway; then the gateway swaps in the deployed main.
            following = tmp_path / "next"
            write_app(following, name, "2.0", main="2")
            # In a thread: the loop must go on answering the socket's pings meanwhile.
            second = await asyncio.to_thread(raydo, "deploy", str(following), "--address", address)
            assert second.returncode == 0, second.stdout + second.stderr
            assert sorted(line for line in second.stdout.splitlines() if line.startswith("  ")) == [
                "  ROOM/shard/0: updated",
                "  ROOM/shard/1: updated",
            ]

            await ws.send("after")
            assert await asyncio.wait_for(ws.recv(), 120) == "2.0:after"
            mains = []
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
                for _ in range(600):  # the record's replacement is seen at once; a bound
                    mains.append((await client.get("/main")).text)
                    if mains[-1] == "2":
                        break
                    await asyncio.sleep(0.1)
            assert mains[-1] == "2", (mains[-5:], server.output())
            assert "serving deploy" in server.log.read_text(errors="replace")
            await ws.send("later")  # the socket outlived the swap of the gateway's app too
            assert await asyncio.wait_for(ws.recv(), 120) == "2.0:later"
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for room in rooms:
                assert client.get(f"/rooms/{room}").json()["version"] == "2.0"
            assert client.get("/main").text == "2"
        assert {host["code"] for host in status(following, address)["hosts"]} == {"current"}
    finally:
        server.stop()

    # A gateway on a machine with no copy of the app: it serves what the deploy left.
    port = free_port()
    bare = Server(
        [RAYDO, "serve", "--deployed", name, "--address", address, "--port", str(port)],
        port,
        tmp_path / "bare.log",
    ).start()
    try:
        with httpx.Client(base_url=bare.url, timeout=120) as client:
            assert client.get("/main").text == "2"
            assert client.get("/rooms/r1").json()["version"] == "2.0"
        assert f"serving the deployed {name} from" in bare.log.read_text(errors="replace")
    finally:
        bare.stop()
    missing = raydo("serve", "--deployed", "never-deployed", "--address", address)
    assert missing.returncode == 2
    assert "no app named 'never-deployed' was deployed to this cluster" in missing.stderr
    both = raydo("serve", str(following), "--deployed", name, "--address", address)
    assert both.returncode == 2 and "not both" in both.stderr


def test_a_dependency_that_does_not_import_fails_the_deploy_before_any_host_starts(
    cluster: tuple[Node, Node], tmp_path: Path
) -> None:
    address = cluster[0].cluster.address
    app = tmp_path / "app"
    write_app(app, f"broken-{uuid.uuid4().hex[:8]}", "1.0")
    wheel = app / "wheels" / f"{DEPENDENCY}-1.0-py3-none-any.whl"
    build_wheel(app / "wheels", "1.0", body="import raydo_no_such_module\n")
    assert wheel.exists()
    done = raydo("deploy", str(app), "--address", address)
    assert done.returncode == 1, done.stdout
    assert "raydo: error: the app's dependencies do not import on node" in done.stderr
    assert "raydo_no_such_module" in done.stderr
    assert "started" not in done.stdout
