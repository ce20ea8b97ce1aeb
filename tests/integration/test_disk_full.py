"""A full disk says so: ``StorageFull`` (503, try later), never a limit, never a path, and no
half-made files left behind.

The disk is a real one: a 4 MiB tmpfs mounted for the test (this needs root, or
CAP_SYS_ADMIN; the test is skipped, saying why, where mounting is not allowed). A tmpfs was
chosen over ``RLIMIT_FSIZE`` because it fails writes the way a full disk does (``ENOSPC``
from every file on it, SQLite's WAL included) rather than with ``SIGXFSZ`` per process.
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from raydo.gateway.testing import TestApp, start_app
from raydo.storage import layout

DISK_BYTES = 4 * 1024 * 1024


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A small filesystem of its own, unmounted after the test."""
    mount = tmp_path / "full-disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here to make a small filesystem")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk refuses more; the file (delete it to free the disk)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        chunk = b"\0" * 65536
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with filler.open("ab", buffering=0) as out:  # the last pages too, byte-sized writes
        try:
            while True:
                out.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def half_made(disk: Path) -> list[Path]:
    return sorted(disk.rglob("*.new"))


def assert_storage_full(reply: httpx.Response, disk: Path) -> dict[str, object]:
    assert reply.status_code == 503, reply.text
    body: dict[str, object] = reply.json()
    assert body["error"] == "storage_full", body
    assert "disk" in str(body["message"]) and "full" in str(body["message"])
    assert "limit" not in body
    assert reply.headers["retry-after"].isdigit()
    for internal in (str(disk), "/tmp", ".sqlite", ".new", "raydo-template"):
        assert internal not in reply.text, f"{internal!r} leaked into the answer: {reply.text}"
    return body


async def test_a_full_disk_is_storage_full_for_writes_new_objects_and_uploads(
    app_copy: Callable[[str], Path], disk: Path
) -> None:
    async with start_app(app_copy("disk"), storage=disk) as app:
        assert (await app.http.post("/notes/a/first?size=100")).json() == {"wrote": 100}
        assert (await app.http.put("/blob/small", content=b"s")).json() == {"size": 1}
        filler = fill(disk)

        # A write to an existing object: the disk, not storage_bytes (the file is tiny).
        body = assert_storage_full(await app.http.post("/notes/a/big?size=200000"), disk)
        assert body["retryable"] is True  # nothing of the event had left the object
        # A new object, whose file cannot even be made; each try leaves nothing behind.
        for _ in range(3):
            assert_storage_full(await app.http.post("/notes/b/first?size=10"), disk)
        assert half_made(disk) == []
        assert await app.env.NOTES.get_by_name("a").read("big") == -1  # nothing was kept

        # A blob upload: JSON, and the same connection serves the next request.
        await same_connection_after_a_failed_upload(app, disk)

        filler.unlink()  # space again: everything works, nothing to restart
        assert (await app.http.post("/notes/a/big?size=200000")).json() == {"wrote": 200000}
        assert (await app.http.post("/notes/b/first?size=10")).json() == {"wrote": 10}
        assert (await app.http.put("/blob/k", content=b"x" * 1000)).json() == {"size": 1000}
    assert half_made(disk) == []


async def same_connection_after_a_failed_upload(app: TestApp, disk: Path) -> None:
    host, port = app.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        upload = b"u" * 300_000
        writer.write(
            b"PUT /blob/big HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % len(upload)
            + upload
        )
        await writer.drain()
        status, headers, body = await read_response(reader)
        assert status == 503 and headers.get("content-type") == "application/json"
        assert headers.get("connection") != "close"
        reply = httpx.Response(status, headers=headers, content=body)
        assert_storage_full(reply, disk)
        writer.write(b"GET /blob/big HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        status, _, body = await read_response(reader)
        assert (status, body) == (404, b'{"error":"not_found"}')  # nothing half-stored
        # Nor half-written: the upload's spool and the blob store's staging files are gone.
        folders = sorted(disk.rglob("tmp"))
        assert folders, "no staging folder found: the check below would see nothing"
        staging = [path for folder in folders for path in folder.iterdir()]
        assert staging == [], staging
    finally:
        writer.close()
        await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return status, headers, body


async def test_half_made_files_of_a_dead_process_are_removed_when_their_host_starts(
    app_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    app_dir = app_copy("disk")
    async with start_app(app_dir, storage=storage) as app:
        hex_id = app.env.NOTES.id_from_name("c").hex
    final = layout.object_file(storage, "NOTES", hex_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    left = layout.partial_object_file(final, 999_999)
    left.write_bytes(b"")
    stranger = final.with_name(".not-an-object.new")  # not a file raydo makes: left alone
    stranger.write_bytes(b"")
    async with start_app(app_dir, storage=storage) as app:
        assert (await app.http.post("/notes/c/k?size=1")).json() == {"wrote": 1}
        assert not left.exists()
        assert stranger.exists()
        assert final.exists()
