"""Everything under a storage folder is its owner's alone (issue 12, item 8): after a run that
uses every binding (objects with key-value, SQL, an alarm and a WebSocket; the database; a
key-value namespace with a value in segments; a bucket with a put, a multipart upload and a
presigned URL; a queue and its consumer; ``raydo objects import``), every folder is 0700 and
every file 0600, under the most permissive umask there is."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from raydo.gateway.config import load_config
from raydo.gateway.inspection import export_object, import_object, object_id
from raydo.gateway.testing import CONFIGURED_STORAGE, start_app
from raydo.storage.owner_only import (
    create_database_file,
    create_file,
    make_folders,
)
from tests.polling import poll

MiB = 1024 * 1024


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 0 for the test: whatever is not made private on purpose would be world-writable."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def modes_under(root: Path) -> dict[str, int]:
    """The permission bits of every folder and file under ``root``, by relative path."""
    found = {}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def wrong_modes(root: Path) -> dict[str, str]:
    wrong = {}
    for relative, mode in modes_under(root).items():
        wanted = 0o700 if (root / relative).is_dir() else 0o600
        if mode != wanted:
            wrong[relative] = oct(mode)
    return wrong


def test_the_helpers_make_exact_modes_whatever_the_umask(tmp_path: Path) -> None:
    for umask in (0, 0o022, 0o077, 0o277):
        previous = os.umask(umask)
        try:
            base = tmp_path / f"u{umask:o}"
            make_folders(base / "a" / "b")
            with create_file(base / "a" / "b" / "body") as body:
                body.write(b"x")
            create_database_file(base / "a" / "db.sqlite")
            create_database_file(base / "a" / "db.sqlite")  # an existing file is left alone
        finally:
            os.umask(previous)
        assert wrong_modes(base) == {}
        assert set(modes_under(base)) == {"a", "a/b", "a/b/body", "a/db.sqlite"}


async def test_every_file_of_every_binding_is_the_owners_alone(
    app_copy: Callable[[str], Path], open_umask: None
) -> None:
    app_dir = app_copy("everything")
    config = load_config(app_dir)
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        http = app.http
        assert (await http.post("/room/a", content=b"note")).json() == {"notes": 1}
        assert (await http.put("/room/a", content=b"fetched")).status_code == 200
        async with app.websocket("/room/a/ws") as ws:
            await ws.send("echo")
            assert await ws.recv() == "echo"
        assert (await http.post("/db", content=b"row")).json() == {"n": 1}
        big = b"v" * (6 * MiB)  # more than one segment: staged, then joined
        assert (await http.put("/kv", params={"key": "big"}, content=big)).status_code == 204
        assert (await http.get("/kv", params={"key": "big"})).content == big
        assert (await http.put("/files", params={"key": "f"}, content=b"blob")).status_code == 204
        url = (await http.post("/files", params={"key": "f"})).json()["url"]
        assert (await http.get(url)).content == b"blob"
        upload = await app.env.FILES.create_multipart_upload("parts")
        part = await upload.upload_part(1, b"p" * 1000)
        await upload.upload_part(2, b"q" * 1000)  # left unfinished: its part file stays
        await upload.abort()
        upload = await app.env.FILES.create_multipart_upload("parts")
        await upload.complete([await upload.upload_part(1, b"one part")])
        assert part.part_number == 1
        assert (await http.post("/jobs", content=b"job")).status_code == 202

        async def notes() -> list[dict[str, object]]:
            return await app.sql(
                "ROOM", "consumer", "SELECT count(*) AS n FROM sqlite_master WHERE name = 'notes'"
            )

        await poll(notes, lambda rows: rows == [{"n": 1}], timeout=30)

    source = object_id(config, "ROOM", "a", by_name=True)
    dump = "".join(export_object(config, source, "sql"))
    import_object(config, object_id(config, "ROOM", "imported", by_name=True), dump)

    storage = config.storage
    seen = modes_under(storage)
    # The run reached every kind of file (so the check below looks at all of them).
    for wanted in ("_alarms.sqlite", ".sqlite-wal", "index.sqlite", "presign.key", "objects/"):
        assert any(wanted in path for path in seen), (wanted, sorted(seen))
    assert wrong_modes(storage) == {}
