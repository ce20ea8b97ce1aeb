"""Hot reload in ``raydo dev``: an edit of the app's code is swapped into the running gateway
(objects keep their data), a broken edit keeps the last good version serving and says why,
and ``--no-reload`` leaves the code alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from watchfiles import Change

from raydo.gateway.config import load_config
from raydo.gateway.reload import AppFiles
from tests.cluster import REPO, Server, copy_app, dev


def wait_for_output(server: Server, text: str, count: int = 1, timeout: float = 90.0) -> str:
    """The server's output once ``text`` appears in it ``count`` times."""
    deadline = time.monotonic() + timeout
    while True:
        output = server.output()
        if output.count(text) >= count:
            return output
        assert server.proc is not None and server.proc.poll() is None, output
        assert time.monotonic() < deadline, f"{text!r} not seen in {timeout} s:\n{output}"
        time.sleep(0.1)


def step_by(app: Path, factor: int) -> None:
    """Edit the counter so that ``increment`` adds ``by * factor``."""
    source = app / "counter.py"
    text = source.read_text()
    start = text.index("n: int = self.ctx.storage.get")
    end = text.index("\n", start) + 1
    source.write_text(
        text[:start] + f'n: int = self.ctx.storage.get("n", 0) + by * {factor}\n' + text[end:]
    )


def increment(client: httpx.Client, name: str = "a") -> int:
    reply = client.post(f"/counter/{name}/increment")
    assert reply.status_code == 200, reply.text
    value: int = reply.json()["value"]
    return value


def test_an_edit_applies_and_the_objects_keep_their_data(tmp_path: Path) -> None:
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    server = dev(app, tmp_path, args=["--in-process"]).start()
    try:
        assert "reloading on changes" in server.output()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert increment(client) == 1
            assert increment(client) == 2
            step_by(app, 10)
            output = wait_for_output(server, "raydo: reloaded")
            assert "counter.py changed" in output
            assert increment(client) == 12  # the new class, on the object's stored value
            # The app itself reloads too: a new route answers.
            (app / "app.py").write_text(
                (app / "app.py").read_text()
                + "\n\nasync def version(request: Request) -> Response:\n"
                + '    return JSONResponse({"version": 2})\n\n\n'
                + 'app.router.add_route("/version", version)\n'
            )
            wait_for_output(server, "raydo: reloaded", count=2)
            assert client.get("/version").json() == {"version": 2}
            assert increment(client) == 22
    finally:
        server.stop()


def test_a_broken_edit_keeps_the_last_good_version_serving(tmp_path: Path) -> None:
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    server = dev(app, tmp_path, args=["--in-process"]).start()
    good = (app / "counter.py").read_text()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert increment(client) == 1
            (app / "counter.py").write_text(good.replace("async def value", "async def value(("))
            output = wait_for_output(server, "does not load")
            assert "last good version keeps serving" in output
            assert "SyntaxError" in output and "counter.py" in output
            assert increment(client) == 2  # the old code answers
            (app / "counter.py").write_text(good)
            step_by(app, 100)  # fixed, and changed: the next good edit applies
            wait_for_output(server, "raydo: reloaded")
            assert increment(client) == 102
            # A bad config is refused the same way.
            toml = app / "raydo.toml"
            toml.write_text(toml.read_text() + "\nshards_typo = 3\n")
            output = wait_for_output(server, "does not load", count=2)
            assert "shards_typo" in output
            assert increment(client) == 202
    finally:
        server.stop()


def test_no_reload_leaves_the_running_code_alone(tmp_path: Path) -> None:
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    server = dev(app, tmp_path, args=["--in-process", "--no-reload"]).start()
    try:
        assert "reloading on changes" not in server.output()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert increment(client) == 1
            step_by(app, 10)
            # Time a reloader would take to see the change (it is not timed: nothing comes).
            time.sleep(3)
            assert increment(client) == 2
        assert "changed" not in server.output()
    finally:
        server.stop()


def test_the_watch_takes_code_and_config_and_never_the_storage_folder(tmp_path: Path) -> None:
    app = copy_app(REPO / "examples" / "counter", tmp_path)
    config = load_config(app)
    files = AppFiles(config)
    root = config.root.resolve()
    storage = config.storage.resolve()
    assert files(Change.modified, str(root / "counter.py"))
    assert files(Change.modified, str(root / "raydo.toml"))
    assert files(Change.added, str(root / "migrations" / "0002_more.sql"))
    assert not files(Change.modified, str(root / "README.md"))
    assert not files(Change.modified, str(root / "__pycache__" / "counter.cpython-311.pyc"))
    # Objects' files, and anything else under the storage folder, even with a code suffix.
    assert not files(Change.modified, str(storage / "objects" / "ab" / "x.sqlite-wal"))
    assert not files(Change.added, str(storage / "stray.py"))
    assert not files(Change.modified, f"{storage}{os.sep}")
