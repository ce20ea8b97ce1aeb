"""Replication seen from outside: the hosts' ``raydo_replication_*`` metrics and ``raydo
storage status`` (per binding: objects, those behind the store, the oldest unshipped)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.gateway import cli
from raydo.gateway.testing import start_app
from raydo.storage import layout
from raydo.storage.replication import local_mark

from .stores import StoreServer, free_port_pair


def _series(text: str, name: str, binding: str) -> float:
    """The sum over hosts of ``name``'s samples for ``binding``."""
    pattern = re.compile(rf'^{name}{{binding="{binding}",host="[^"]*"}} (\S+)$', re.M)
    values = [float(v) for v in pattern.findall(text)]
    assert values, f"no {name} sample for {binding}"
    return sum(values)


def _status(
    app_dir: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, dict[str, Any]]:
    assert cli.main(["storage", "status", "--dir", str(app_dir), "--json", *extra]) == 0
    report = json.loads(capsys.readouterr().out)
    return {row["binding"]: row for row in report["bindings"]}


async def test_hosts_export_what_they_shipped_and_how_far_behind_they_are(
    moto_store: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    async with start_app(replicated_app(moto_store), metrics=True) as app:
        for name in ("a", "b", "c"):
            await app.env.NOTES.get_by_name(name).write("k", "v" * 2000)
        async with httpx.AsyncClient() as client:
            text = (await client.get(app.metrics_url)).text
    entries = _series(text, "raydo_replication_segments_total", "NOTES")
    entries += _series(text, "raydo_replication_snapshots_total", "NOTES")
    assert entries >= 3  # an object's first entry with data is its snapshot
    assert _series(text, "raydo_replication_shipped_bytes_total", "NOTES") > 3 * 2000
    assert _series(text, "raydo_replication_take_overs_total", "NOTES") == 3
    assert _series(text, "raydo_replication_failures_total", "NOTES") == 0
    # sync mode: every acknowledged commit is in the store, so nothing waits
    assert _series(text, "raydo_replication_objects_behind", "NOTES") == 0
    assert _series(text, "raydo_replication_lag_seconds", "NOTES") == 0


async def test_an_async_commit_waiting_for_its_round_shows_as_lag(
    moto_store: StoreServer, replicated_app: Callable[..., Path]
) -> None:
    app_dir = replicated_app(moto_store, mode="async", async_interval_s=600)
    async with start_app(app_dir, metrics=True) as app:
        await app.env.NOTES.get_by_name("waits").write("k", "v")
        async with httpx.AsyncClient() as client:
            text = (await client.get(app.metrics_url)).text
        assert _series(text, "raydo_replication_objects_behind", "NOTES") == 1
        assert _series(text, "raydo_replication_lag_seconds", "NOTES") > 0


async def test_storage_status_reads_the_folder_against_the_marks(
    moto_store: StoreServer,
    replicated_app: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app_dir = replicated_app(moto_store, mode="async", async_interval_s=600)
    folder = app_dir / ".raydo"  # where the config's `storage` puts it, so the CLI finds it
    async with start_app(app_dir, storage=folder) as app:
        await app.env.NOTES.get_by_name("one").write("k", "v")
        await app.env.NOTES.get_by_name("two").write("k", "v")
        notes = _status(app_dir, capsys)["NOTES"]  # never shipped: no mark, all of it waits
        assert (notes["objects"], notes["replicated"], notes["behind"]) == (2, 0, 2)
        assert notes["unshipped_bytes"] > 0 and notes["unshipped_since"] is None
    notes = _status(app_dir, capsys)["NOTES"]  # a closing host ships what waits
    assert (notes["objects"], notes["replicated"], notes["behind"]) == (2, 2, 0)
    async with start_app(app_dir, storage=folder) as app:
        await app.env.NOTES.get_by_name("one").write("k", "again")
        await app.env.NOTES.get_by_name("two").write("k", "again")
        notes = _status(app_dir, capsys)["NOTES"]
        assert (notes["objects"], notes["replicated"], notes["behind"]) == (2, 2, 2)
        assert notes["unshipped_bytes"] > 0
        assert isinstance(notes["unshipped_since"], float)
    rows = _status(app_dir, capsys)  # a closing host ships what waits
    assert (rows["NOTES"]["objects"], rows["NOTES"]["behind"]) == (2, 0)
    assert rows["NOTES"]["unshipped_since"] is None
    assert set(rows) >= {"NOTES"}  # and the internal bindings (the database's) are listed
    assert any(name.startswith("_") for name in rows)


async def test_storage_status_with_the_store_sees_files_another_node_left_behind(
    store_server: StoreServer,
    replicated_app: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    app_dir = replicated_app(store_server)
    async with start_app(app_dir, storage=app_dir / ".raydo") as app:
        await app.env.NOTES.get_by_name("moved").write("k", "here")
        await app.env.NOTES.get_by_name("stayed").write("k", "here")
    async with start_app(app_dir, storage=tmp_path / "elsewhere") as app:  # another node
        await app.env.NOTES.get_by_name("moved").write("k", "there")
    rows = _status(app_dir, capsys, "--store")
    assert rows["NOTES"]["behind"] == 0
    assert rows["NOTES"]["behind_store"] == 1
    assert cli.main(["storage", "status", "--dir", str(app_dir), "--store"]) == 0
    table = capsys.readouterr().out
    assert "behind store" in table and "NOTES" in table


async def test_storage_status_survives_damaged_marks_and_says_when_replication_is_off(
    moto_store: StoreServer,
    replicated_app: Callable[..., Path],
    app_copy: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app_dir = replicated_app(moto_store)
    folder = app_dir / ".raydo"
    async with start_app(app_dir, storage=folder) as app:
        await app.env.NOTES.get_by_name("x").write("k", "v")
    (object_hex,) = list(layout.object_hexes(folder, "NOTES"))
    mark = local_mark.mark_file(layout.object_file(folder, "NOTES", object_hex))
    for damage in (b"", b"{not json", b'{"seq": "x"}', b"\xff" * 64, b"[]"):
        mark.write_bytes(damage)
        rows = _status(app_dir, capsys)
        assert rows["NOTES"]["objects"] == 1 and rows["NOTES"]["replicated"] == 0

    plain = app_copy("counter")  # no [replication]
    assert cli.main(["storage", "status", "--dir", str(plain)]) == 0
    assert "replication is off" in capsys.readouterr().out
    assert cli.main(["storage", "status", "--dir", str(plain), "--store"]) == 2
    assert "--store needs it" in capsys.readouterr().err


async def test_storage_status_with_an_unreachable_store_is_a_clear_error(
    replicated_app: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    store_credentials: None,
) -> None:
    nowhere = StoreServer("none", f"http://127.0.0.1:{free_port_pair()}", bucket="nowhere")
    app_dir = replicated_app(nowhere)
    assert cli.main(["storage", "status", "--dir", str(app_dir), "--store"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("raydo: error:") and "127.0.0.1" in error
