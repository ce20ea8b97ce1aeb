"""The ``raydo`` command, run as a user runs it: as a process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from tests.cluster import RAYDO, REPO, Server, copy_app, free_port, quiet_env
from tests.gateway.test_reload import step_by, wait_for_output


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAYDO, *args], capture_output=True, text=True, timeout=timeout, env=quiet_env()
    )


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "dev" in result.stdout and "serve" in result.stdout


def test_a_missing_app_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = run("dev", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "raydo.toml" in result.stderr and "nowhere" in result.stderr


def test_a_bad_config_names_the_file_and_the_key(tmp_path: Path) -> None:
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    toml = app / "raydo.toml"
    toml.write_text(toml.read_text().replace("shards = 2", 'shards = "two"'))
    result = run("serve", str(app), "--address", "127.0.0.1:1")
    assert result.returncode == 2
    assert str(toml) in result.stderr
    assert "durable_objects.bindings[0].shards" in result.stderr


def test_a_class_that_does_not_import_fails_at_start(tmp_path: Path) -> None:
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    toml = app / "raydo.toml"
    toml.write_text(toml.read_text().replace("counter:Counter", "counter:Nope"))
    result = run("serve", str(app), "--address", "127.0.0.1:1")
    assert result.returncode == 2
    assert "counter:Nope" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["dev", "--port", "70000"], "outside 0-65535"),
        (["dev", "--port", "http"], "not a port number"),
        (["serve", "--address", "x", "--workers", "0"], "--workers takes 1 to 64"),
        (["serve"], "--address"),
        (["launch"], "invalid choice"),
    ],
)
def test_bad_arguments_are_refused(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_serve_refuses_a_bad_hosts_bind(tmp_path: Path) -> None:
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    result = run("serve", str(app), "--address", "127.0.0.1:1", "--hosts-bind", "0.0.0.0;rm")
    assert result.returncode == 2
    assert "--hosts-bind" in result.stderr


def test_dev_in_process_serves_the_counter(tmp_path: Path) -> None:
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    port = free_port()
    server = Server(
        [RAYDO, "dev", str(app), "--port", str(port), "--in-process"], port, tmp_path / "dev.log"
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/counter/a/increment").json() == {"name": "a", "value": 1}
            assert client.post("/counter/a/increment").json() == {"name": "a", "value": 2}
            assert client.get("/counter/a").json()["value"] == 2
    finally:
        server.stop()
    assert "127.0.0.1" in server.output()


def test_quick_start_dev_on_embedded_ray_serves_the_counter_on_loopback(tmp_path: Path) -> None:
    """The README's first command: ``raydo dev examples/counter`` (here on a free port)."""
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    port = free_port()
    server = Server([RAYDO, "dev", str(app), "--port", str(port)], port, tmp_path / "dev.log")
    server.start(timeout=120)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for expected in (1, 2, 3):
                assert client.post("/counter/q/increment").json()["value"] == expected
            # An edit of the counter applies in the running hosts (its object was live in
            # one, and is constructed again from the new class on its stored value).
            step_by(app, 10)
            output = wait_for_output(server, "raydo: reloaded")
            assert "1 live object(s) deactivated" in output
            assert client.post("/counter/q/increment").json()["value"] == 13
        listening = [
            c.laddr
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
        ]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    finally:
        server.stop()
