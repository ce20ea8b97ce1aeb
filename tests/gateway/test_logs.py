"""Structured logs: records made inside a turn say which object made them."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from raydo.actors import _logs
from raydo.gateway.testing import start_app
from tests.cluster import RAYDO, free_port, quiet_env


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """JSON lines of every record of this process, as ``configure("json")`` shapes them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(_logs.ObjectContext())
    handler.setFormatter(_logs.JsonLines())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_object_records_carry_binding_and_object_id(
    captured: io.StringIO, app_copy: Callable[[str], Path]
) -> None:
    async with start_app(app_copy("observed")) as app:
        assert await app.env.NOISY.get_by_name("a").speak("hi") == "hi"
        assert (await app.http.post("/relay/b/c")).json() == {"said": "hello"}
        logging.getLogger("test").warning("outside any object")
        a, c = app.env.NOISY.id_from_name("a").hex, app.env.NOISY.id_from_name("c").hex
    records = {str(r["message"]): r for r in lines(captured)}
    said = records["said hi"]
    assert said["binding"] == "NOISY"
    assert said["object_id"] == a
    assert said["object_name"] == "a"
    assert said["logger"] == "objects"
    assert said["level"] == "WARNING"
    # The relayed call logged inside c's turn, not b's (which was waiting on it).
    assert records["said hello"]["object_id"] == c
    outside = records["outside any object"]
    assert outside["binding"] is None and outside["object_id"] is None


async def test_text_lines_name_the_object(app_copy: Callable[[str], Path]) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(_logs.ObjectContext())
    handler.setFormatter(logging.Formatter(_logs._TEXT))
    logging.getLogger("objects").addHandler(handler)
    try:
        async with start_app(app_copy("observed")) as app:
            await app.env.NOISY.get_by_name("a").speak("hi")
            hex_id = app.env.NOISY.id_from_name("a").hex
    finally:
        logging.getLogger("objects").removeHandler(handler)
    assert f"WARNING objects [NOISY {hex_id[:16]}]: said hi" in out.getvalue()


def test_configure_replaces_its_handler_and_refuses_unknown_formats() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        _logs.configure("json")
        _logs.configure("text")
        ours = [h for h in root.handlers if isinstance(h, _logs._RaydoHandler)]
        assert len(ours) == 1
        assert _logs.current_format() == "text"
        with pytest.raises(ValueError, match="unknown log format"):
            _logs.configure("yaml")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_exceptions_are_one_json_line() -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    text = _logs.JsonLines().format(record)
    assert "\n" not in text
    assert "RuntimeError: boom" in json.loads(text)["exception"]


def test_raydo_dev_writes_json_lines(app_copy: Callable[[str], Path], tmp_path: Path) -> None:
    """End to end: ``raydo dev --in-process --log-format json``; the object's record is one
    JSON line with its binding and id on the process's stderr."""
    port = free_port()
    log = tmp_path / "dev.log"
    app_dir = app_copy("observed")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                RAYDO,
                "dev",
                str(app_dir),
                "--in-process",
                "--port",
                str(port),
                "--log-format",
                "json",
            ],
            env=quiet_env(),
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        for _ in range(300):
            try:
                reply = httpx.post(f"http://127.0.0.1:{port}/relay/a/b", timeout=5)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.1)
        assert reply.json() == {"said": "hello"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    records = [json.loads(line) for line in log.read_text().splitlines()]  # all JSON
    said = [r for r in records if r["message"] == "said hello"]
    assert len(said) == 1
    assert said[0]["binding"] == "NOISY" and said[0]["object_name"] == "b"
    assert len(str(said[0]["object_id"])) == 64
