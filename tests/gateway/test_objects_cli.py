"""``raydo objects``: seeing inside objects from the storage folder, as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from raydo.gateway.testing import CONFIGURED_STORAGE, start_app
from tests.cluster import RAYDO, REPO, copy_app, quiet_env


def raydo(app: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAYDO, "objects", *args],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
        env=quiet_env(),
        input=stdin,
    )


@pytest.fixture
async def app(tmp_path: Path, anyio_backend: str) -> Path:
    """The counter app with three objects, one with a table of its own and an alarm-free life.

    (It asks for ``anyio_backend`` so that the tests that use it need not be async.)"""
    app_dir = copy_app(REPO / "examples" / "counter", tmp_path)
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as running:
        for name in ("a", "b", "b", "%2E%2E"):  # ".." is just a name
            await running.http.post(f"/counter/{name}/increment")
        await running.sql("COUNTER", "a", "CREATE TABLE notes (t TEXT)")
        await running.sql("COUNTER", "a", "INSERT INTO notes VALUES ('hello')")
    return app_dir


def test_list_pages_through_the_objects(app: Path) -> None:
    everything = raydo(app, "list", "COUNTER", "--json")
    assert everything.returncode == 0, everything.stderr
    rows = [json.loads(line) for line in everything.stdout.splitlines()]
    assert len(rows) == 3
    assert all(len(r["id"]) == 64 and r["size_bytes"] > 0 and r["alarm"] is None for r in rows)
    assert sorted(r["name"] for r in rows) == ["..", "a", "b"]  # names the hosts recorded
    first = raydo(app, "list", "COUNTER", "--limit", "2")
    assert len(first.stdout.splitlines()) == 2
    assert "--after" in first.stderr
    cursor = first.stderr.split("--after ")[1].split(")")[0]
    rest = raydo(app, "list", "COUNTER", "--after", cursor)
    assert [line.split()[0] for line in rest.stdout.splitlines()] == [rows[2]["id"]]


def test_a_damaged_file_is_listed_as_unreadable_and_the_rest_still_are(app: Path) -> None:
    from raydo.gateway.config import load_config
    from raydo.gateway.inspection import object_id
    from raydo.storage import layout

    config = load_config(app)
    damaged = object_id(config, "COUNTER", "b", by_name=True)
    path = layout.object_file(config.storage, "COUNTER", damaged.hex)
    for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        sidecar.unlink(missing_ok=True)
    path.write_bytes(b"not a database at all " * 100)
    listed = raydo(app, "list", "COUNTER", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert len(rows) == 3
    assert "not a database" in rows[damaged.hex]["unreadable"]
    assert sorted(r["name"] for r in rows.values() if r["unreadable"] is None) == ["..", "a"]
    plain = raydo(app, "list", "COUNTER")
    assert f"{damaged.hex}" in plain.stdout and "UNREADABLE: file is not a database" in plain.stdout


async def test_show_sql_export_and_import(app: Path) -> None:
    shown = json.loads(raydo(app, "show", "COUNTER", "a").stdout)
    assert shown["name"] == "a" and shown["tables"] == {"notes": 1} and shown["kv_pairs"] == 1
    by_id = json.loads(raydo(app, "show", "COUNTER", shown["id"]).stdout)
    assert by_id["id"] == shown["id"] and by_id["name"] == "a"
    query = raydo(app, "sql", "COUNTER", "a", "SELECT t FROM notes", "--json")
    assert json.loads(query.stdout) == {"t": "hello"}
    refused = raydo(app, "sql", "COUNTER", "a", "DELETE FROM notes")
    assert refused.returncode == 2 and "--write" in refused.stderr
    assert raydo(app, "sql", "COUNTER", "a", "DELETE FROM notes", "--write").returncode == 0
    assert raydo(app, "sql", "COUNTER", "a", "SELECT count(*) FROM notes").stdout.strip() == "0"
    jsonl = raydo(app, "export", "COUNTER", "b", "--format", "jsonl").stdout
    lines = [json.loads(line) for line in jsonl.splitlines()]
    assert {"table": "_raydo_kv", "row": {"key": "n", "value": {"$value": 2}}} in lines
    assert any(line["table"] == "_raydo_meta" and line["row"]["key"] == "name" for line in lines)
    dump = raydo(app, "export", "COUNTER", "b").stdout
    assert "CREATE TABLE _raydo_kv" in dump
    assert raydo(app, "import", "COUNTER", "b2", "-", stdin=dump).returncode == 0
    again = raydo(app, "import", "COUNTER", "b2", "-", stdin=dump)
    assert again.returncode == 2 and "not replaced" in again.stderr

    async with start_app(app, storage=CONFIGURED_STORAGE) as running:
        assert (await running.http.get("/counter/b2")).json()["value"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "NOPE", "a"], "no Durable Object binding 'NOPE'"),
        (["show", "COUNTER", "never-touched"], "has no storage"),
        (["sql", "COUNTER", "a", "SELEC nonsense"], "syntax error"),
        (["import", "COUNTER", "fresh", "-"], "does not load"),
        (["list", "COUNTER", "--limit", "0"], "--limit takes 1 to 1000000"),
        (["show", "COUNTER", "x" * 5000], "name_bytes"),
    ],
)
def test_bad_requests_are_clear_errors(app: Path, args: list[str], message: str) -> None:
    result = raydo(app, *args, stdin="this is not SQL;")
    assert result.returncode == 2
    assert message in result.stderr
