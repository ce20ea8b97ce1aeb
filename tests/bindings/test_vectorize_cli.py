"""``raydo vectorize ...`` on a copy of tests/apps/vectors: each command a separate run of the
CLI over the app's storage folder (so every step also reloads the index from its files)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import struct
import sys
import termios
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from raydo.gateway.cli import main as cli
from raydo.gateway.cli_vectorize import PROGRESS_FROM_BYTES
from raydo.gateway.config import load_config
from raydo.gateway.testing import CONFIGURED_STORAGE, start_app


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("vectors")


def run(capsys: pytest.CaptureFixture[str], app: Path, *argv: str) -> tuple[int, str, str]:
    code = cli(["vectorize", *argv, "--dir", str(app)])
    out, err = capsys.readouterr()
    return code, out, err


def write_ndjson(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_create_adds_a_checked_entry(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, app_dir, "create", "emb", "--dimensions", "3", "--metric", "dot-product"
    )
    assert code == 0 and 'index_name = "emb"' in out
    entry = next(e for e in load_config(app_dir).vectorize if e["index_name"] == "emb")
    assert (entry["binding"], entry["dimensions"], entry["metric"]) == ("EMB", 3, "dot-product")
    code, _, err = run(capsys, app_dir, "create", "emb", "--dimensions", "3")
    assert code == 2 and "already has an index 'emb'" in err
    before = (app_dir / "raydo.toml").read_text()
    code, _, err = run(capsys, app_dir, "create", "bad/name", "--dimensions", "3")
    assert code == 2 and "index_name" in err
    assert (app_dir / "raydo.toml").read_text() == before  # the file as it was
    code, _, _ = run(capsys, app_dir, "create", "bge2", "--preset", "@cf/baai/bge-base-en-v1.5")
    entry = next(e for e in load_config(app_dir).vectorize if e["index_name"] == "bge2")
    assert (entry["dimensions"], entry["metric"]) == (768, "cosine")


def test_every_command_through_the_binding(
    app_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"id": f"p{i}", "values": [i, 0, 0], "metadata": {"k": i % 3}, "namespace": "n"}
        for i in range(30)
    ]
    file = write_ndjson(tmp_path / "v.ndjson", rows)
    assert run(capsys, app_dir, "create-metadata-index", "points", "--property-name", "k",
               "--type", "number")[0] == 0  # fmt: skip
    code, out, _ = run(capsys, app_dir, "upsert", "points", "--file", str(file))
    assert code == 0 and "upserted 30 of 30 vectors" in out
    code, out, _ = run(capsys, app_dir, "insert", "EUCLID", "--file", str(file))  # the binding
    assert code == 0 and "inserted 0 of 30" in out  # every id exists: skipped

    code, out, _ = run(
        capsys, app_dir, "query", "points", "--vector", "7.2", "0", "0", "--top-k", "2",
        "--return-metadata", "all", "--filter", '{"k": {"$ne": 1}}',
    )  # fmt: skip
    found = json.loads(out)
    assert found["count"] == 2 and [m["id"] for m in found["matches"]] == ["p8", "p6"]
    assert found["matches"][0]["metadata"] == {"k": 2} and found["matches"][0]["namespace"] == "n"
    assert found["matches"][0]["score"] == pytest.approx(0.8, abs=1e-6)
    code, out, _ = run(capsys, app_dir, "query", "points", "--vector-id", "p3", "--top-k", "1")
    assert json.loads(out)["matches"] == [{"id": "p3", "score": 0.0}]

    code, out, _ = run(capsys, app_dir, "info", "points")
    assert "vectors\t30" in out and "dimensions\t3" in out and out.count("shard ") == 3
    code, out, _ = run(capsys, app_dir, "list")
    assert "points\tEUCLID\t3\teuclidean\t3\t30" in out
    code, out, err = run(capsys, app_dir, "list-vectors", "points", "--count", "2")
    assert out.split() == ["p0", "p1"] and "--cursor p1" in err
    code, out, _ = run(capsys, app_dir, "list-vectors", "points", "--count", "2", "--cursor", "p1")
    assert out.split() == ["p10", "p11"]
    code, out, _ = run(capsys, app_dir, "get-vectors", "points", "--ids", "p2", "nope")
    assert json.loads(out) == [
        {"id": "p2", "values": [2.0, 0.0, 0.0], "namespace": "n", "metadata": {"k": 2}}
    ]
    code, out, _ = run(capsys, app_dir, "delete-vectors", "points", "--ids", "p2", "nope")
    assert "deleted 1 vectors" in out
    code, out, _ = run(capsys, app_dir, "list-metadata-index", "points")
    assert out == "k\tnumber\n"
    assert run(capsys, app_dir, "delete-metadata-index", "points", "--property-name", "k")[0] == 0
    code, _, err = run(capsys, app_dir, "query", "points", "--vector", "1", "0", "0",
                       "--filter", '{"k": 1}')  # fmt: skip
    assert code == 2 and "no metadata index" in err
    code, _, err = run(capsys, app_dir, "delete", "points")  # no terminal: refused
    assert code == 2 and "--force" in err
    assert run(capsys, app_dir, "delete", "points", "--force")[0] == 0
    assert "vectors\t0" in run(capsys, app_dir, "info", "points")[1]


GOOD = [json.dumps({"id": f"ok{i}", "values": [i, 1, 1]}) for i in range(5)]  # lines 1-5


@pytest.mark.parametrize(
    "bad, message",
    [
        (["{not json"], "line 6 is not JSON"),
        (['{"id": "b", "values": [1, 2]}'], "line 6: vector 0 ('b') has 2 dimensions"),
        (["", '{"id": "ok1", "values": [1, 2, 3]}'], "line 7: id 'ok1' is on line 2 too"),
        (['{"id": "a", "values": [1, 2, "x"]}'], "line 6: vector 0 ('a'): values must be numbers"),
        (["[1, 2, 3]"], "line 6: vector 0 is a list"),
        (None, "no vectors"),
    ],
)  # fmt: skip
def test_a_bad_file_names_its_line_and_writes_nothing(
    app_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bad: list[str] | None,
    message: str,
) -> None:
    file = tmp_path / "bad.ndjson"
    file.write_text("\n".join([*GOOD, *bad]) + "\n" if bad is not None else "\n  \n")
    code, _, err = run(capsys, app_dir, "upsert", "points", "--file", str(file))
    assert code == 2 and message in err, err
    assert "vectors\t0" in run(capsys, app_dir, "info", "points")[1]


async def test_a_running_app_keeps_its_folder(app_dir: Path) -> None:
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        await app.env.EUCLID.upsert([{"id": "a", "values": [1, 0, 0]}])
        code = await asyncio.to_thread(cli, ["vectorize", "info", "points", "--dir", str(app_dir)])
        assert code == 2
    code = await asyncio.to_thread(cli, ["vectorize", "info", "points", "--dir", str(app_dir)])
    assert code == 0


def test_a_big_file_shows_its_progress_on_a_terminal_only(
    app_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1,100 vectors of about 1 KiB each: a file past PROGRESS_FROM_BYTES (1 MiB).
    pad = "x" * 1000
    rows = [{"id": f"p{i}", "values": [i, 0, 0], "metadata": {"pad": pad}} for i in range(1100)]
    file = write_ndjson(tmp_path / "big.ndjson", rows)
    assert file.stat().st_size > PROGRESS_FROM_BYTES
    # Into a pipe (pytest's capture): no bar, only the result.
    code, out, err = run(capsys, app_dir, "upsert", "points", "--file", str(file))
    assert code == 0 and "upserted 1100 of 1100 vectors" in out, err
    assert "checking" not in err and "%" not in err, err
    # On a terminal: the check of the file and the writes, each drawn up to 100%.
    drawn = bytearray()
    master, slave = os.openpty()
    # A terminal 100 columns wide (a new one has no size, and tqdm would draw in 0 columns).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))

    def read() -> None:
        with contextlib.suppress(OSError):  # EIO once the terminal's other end is closed
            while chunk := os.read(master, 65536):
                drawn.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with open(slave, "w", encoding="utf-8") as terminal, pytest.MonkeyPatch.context() as mp:
            mp.setattr(sys, "stderr", terminal)
            code = cli(
                ["vectorize", "insert", "points", "--file", str(file), "--dir", str(app_dir)]
            )
        reader.join(30)
    finally:
        os.close(master)
    shown = drawn.decode(errors="replace")
    assert code == 0, shown
    assert "checking" in shown and "inserting" in shown, shown
    assert shown.count("100%") >= 2, shown
    assert "inserted 0 of 1100 vectors" in capsys.readouterr().out  # all there already
