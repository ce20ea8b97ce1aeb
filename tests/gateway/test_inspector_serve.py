"""``raydo serve --inspector`` as users run it: a token made and printed at start, every
worker refusing the inspector's routes without it, and off unless asked; ``raydo dev``
serving it without a token unless ``--no-inspector``."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.cluster import RAYDO, Server, dev, quiet_env

API = "/_raydo/inspector/api/bindings"


def test_serve_prints_a_token_and_every_worker_asks_for_it(
    app_copy: Callable[[str], Path], gateway: Callable[..., Server]
) -> None:
    server = gateway(app_copy("counter"), workers=2, args=["--inspector"])
    printed = re.search(
        r"inspector on (http://\S+)\?token=(\S+) \(clients on 127\.0\.0\.1 only\)", server.output()
    )
    assert printed is not None, server.output()
    assert printed.group(1) == server.url + "/_raydo/inspector"
    token = printed.group(2)
    bearer = {"authorization": f"Bearer {token}"}
    for _ in range(6):  # new connections: both workers answer in turn
        assert httpx.get(server.url + API, timeout=30).status_code == 401
        reply = httpx.get(server.url + API, headers=bearer, timeout=30)
        assert reply.status_code == 200 and reply.json()["objects"][0]["name"] == "COUNTER"
    assert httpx.get(server.url + "/_raydo/inspector", timeout=30).status_code == 401


def test_serve_without_the_flag_has_no_inspector(
    app_copy: Callable[[str], Path], gateway: Callable[..., Server]
) -> None:
    server = gateway(app_copy("counter"))
    assert "inspector" not in server.output()
    assert httpx.get(server.url + "/_raydo/inspector", timeout=30).status_code == 404
    assert httpx.get(server.url + API, timeout=30).status_code == 404


def test_inspector_options_need_the_flag(app_copy: Callable[[str], Path]) -> None:
    app = app_copy("counter")
    for args, said in (
        (["--inspector-token", "t" * 20], "go with --inspector"),
        (["--inspector-public"], "go with --inspector"),
        (["--inspector", "--inspector-token", "short"], "at least 16"),
    ):
        refused = subprocess.run(
            [RAYDO, "serve", str(app), "--address", "127.0.0.1:1", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=quiet_env(),
        )
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr


def test_dev_serves_it_unless_told_not_to(app_copy: Callable[[str], Path], tmp_path: Path) -> None:
    app = app_copy("counter")
    for args, status in ((["--in-process"], 200), (["--in-process", "--no-inspector"], 404)):
        server = dev(app, tmp_path, args=args).start()
        try:
            assert httpx.get(server.url + API, timeout=30).status_code == status
            assert ("inspector on" in server.output()) is (status == 200)
        finally:
            server.stop()
