"""The default blob backend: a bucket is a folder of body files and one SQLite index.

Layout of ``<storage>/_r2/<bucket_name>/``::

    index.sqlite        key -> size, etag, times, metadata, version (see ``_index``)
    objects/ab/<ver>    one body per version, named by a random 32-hex version id
    parts/<random>      uploaded parts of multipart uploads in progress
    tmp/<random>        bodies still arriving

A put, in order: the body streams into a fresh file under ``tmp/`` while its MD5 is taken;
the file is fsync'd and renamed to ``objects/<ver>``; then one index transaction checks the
put's conditions against the object there now and points the key at the new version, moving
the old version's file to the trash, which is emptied right after. So readers see the old
object or the new one, never a part of one, from any process. A body that fails or whose
client disconnects is removed before the error travels on. No name on disk comes from a
key, so no key can reach outside the bucket folder.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import replace
from io import BufferedReader
from pathlib import Path
from typing import IO

from ..owner_only import create_file, make_folders
from ._index import BlobIndex, PartRow, Upload, decode_cursor, encode_cursor, object_file
from ._types import (
    CHUNK_BYTES,
    MIN_PART_BYTES,
    BlobMeta,
    Body,
    Conditions,
    InvalidPart,
    ListPage,
    NoSuchUpload,
    Part,
    Range,
    check_parts,
    multipart_etag,
    now,
    receive_body,
)

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_TRASHABLE = re.compile(r"(objects/[0-9a-f]{2}/[0-9a-f]{32}|parts/[0-9a-f]{32})")
#: A temp file this old belongs to a process that died mid-upload.
_STALE_TMP_S = 24 * 3600
#: Multipart uploads not completed after this long are aborted (R2 does the same).
_STALE_UPLOAD_S = 7 * 24 * 3600


class FileBody:
    """A body read from its open file in chunks of :data:`CHUNK_BYTES`; ``read_all`` takes
    the rest in one read (what ``R2ObjectBody.read`` uses). The file closes at the end, on
    ``aclose``, or when the body is dropped."""

    def __init__(self, file: BufferedReader, offset: int, length: int) -> None:
        self._file = file
        self._left = length
        try:
            file.seek(offset)
        except BaseException:
            file.close()
            raise

    def __aiter__(self) -> FileBody:
        return self

    async def __anext__(self) -> bytes:
        if self._left <= 0:
            self._file.close()
            raise StopAsyncIteration
        return self._take(min(CHUNK_BYTES, self._left))

    def _take(self, size: int) -> bytes:
        try:
            chunk = self._file.read(size)
            if len(chunk) < size:  # truncated under us: never a short body, silently
                raise OSError(f"blob body ended {self._left - len(chunk)} bytes early")
        except BaseException:
            self._file.close()
            raise
        self._left -= size
        return chunk

    async def read_all(self) -> bytes:
        try:
            return self._take(self._left)
        finally:
            self._file.close()

    async def aclose(self) -> None:
        self._file.close()

    def __del__(self) -> None:
        self._file.close()


class _Refused(Exception):
    """The put's conditions failed at commit."""


class FilesystemBackend:
    """A bucket in a local folder, shared safely by every process that opens it."""

    def __init__(self, root: Path, *, full_sync: bool = False) -> None:
        self.root = root
        self._full_sync = full_sync
        self._index = BlobIndex(root / "index.sqlite", full_sync=full_sync)
        self._started = False

    async def _ready(self) -> None:
        if not self._started:
            await asyncio.to_thread(self._start)
            self._started = True

    def _start(self) -> None:
        for folder in ("objects", "parts", "tmp"):
            make_folders(self.root / folder)
        cutoff = time.time() - _STALE_TMP_S
        for path in (self.root / "tmp").iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                continue
        for upload_id in self._index.stale_uploads(int((time.time() - _STALE_UPLOAD_S) * 1000)):
            with self._index.writing() as db:
                self._index.end_upload(db, upload_id)
        self._empty_trash()

    def _empty_trash(self) -> None:
        files = self._index.trash()
        for name in files:
            if _TRASHABLE.fullmatch(name):
                (self.root / name).unlink(missing_ok=True)
        if files:
            self._index.emptied(files)

    # Bodies in and out.

    async def _receive(self, body: Body, max_bytes: int) -> tuple[Path, str, int, IO[bytes]]:
        """Stream ``body`` into a new temp file: ``(path, md5 hex, size, open file)``.
        On any failure the file is gone before the error leaves."""
        path = self.root / "tmp" / secrets.token_hex(16)
        file = create_file(path)
        try:
            md5, size = await receive_body(body, file, max_bytes)
            file.flush()
        except BaseException:
            file.close()
            path.unlink(missing_ok=True)
            raise
        return path, md5, size, file

    def _settle(self, file: IO[bytes], tmp: Path, final: Path) -> None:
        """Make a received body durable and give it its final name."""
        try:
            os.fsync(file.fileno())
        finally:
            file.close()
        make_folders(final.parent)
        os.replace(tmp, final)
        if self._full_sync:
            directory = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    # The Protocol.

    async def put(
        self,
        key: str,
        body: Body,
        *,
        http_metadata: dict[str, str],
        custom_metadata: dict[str, str],
        only_if: Conditions | None,
        max_bytes: int,
    ) -> BlobMeta | None:
        await self._ready()
        raw = key.encode()
        # Checked before the body is read (a cheap refusal) and again, atomically, at commit.
        if only_if is not None and not only_if.holds(await self.head(key)):
            return None
        tmp, etag, size, file = await self._receive(body, max_bytes)
        version = secrets.token_hex(16)
        meta = BlobMeta(key, size, etag, now(), version, http_metadata, custom_metadata)
        final = self.root / object_file(version)

        def commit() -> BlobMeta | None:
            try:
                self._settle(file, tmp, final)
                with self._index.writing() as db:
                    if only_if is not None and not only_if.holds(self._index.current(db, raw)):
                        raise _Refused
                    # The upload time is taken inside the write lock, so it orders the puts.
                    committed = replace(meta, uploaded=now())
                    self._index.replace(db, raw, committed)
            except BaseException as exc:
                tmp.unlink(missing_ok=True)
                final.unlink(missing_ok=True)
                if isinstance(exc, _Refused):
                    return None
                raise
            self._empty_trash()
            return committed

        return await asyncio.to_thread(commit)

    async def get(
        self, key: str, *, range: Range | None, only_if: Conditions | None
    ) -> tuple[BlobMeta, Body | None, tuple[int, int] | None] | None:
        await self._ready()
        raw = key.encode()

        def open_() -> tuple[BlobMeta, BufferedReader | None] | None:
            # A concurrent put or delete may trash the version between the index read and the
            # open; the index then names a newer version (or none).
            for _attempt in builtins.range(100):
                meta = self._index.get(raw)
                if meta is None:
                    return None
                if only_if is not None and not only_if.holds(meta):
                    return meta, None
                try:
                    return meta, (self.root / object_file(meta.version)).open("rb")
                except FileNotFoundError:
                    continue
            raise OSError(f"the body of {key!r} keeps disappearing")

        # In the event loop: a WAL read waits for no writer, and opening a file is quick.
        found = open_()
        if found is None:
            return None
        meta, file = found
        if file is None:
            return meta, None, None
        try:
            offset, length = range.resolve(meta.size) if range is not None else (0, meta.size)
        except BaseException:
            file.close()
            raise
        served = (offset, length) if range is not None else None
        return meta, FileBody(file, offset, length), served

    async def head(self, key: str) -> BlobMeta | None:
        await self._ready()
        return self._index.get(key.encode())

    async def delete(self, keys: Sequence[str]) -> None:
        await self._ready()

        def delete() -> None:
            self._index.delete([key.encode() for key in keys])
            self._empty_trash()

        await asyncio.to_thread(delete)

    async def list(
        self,
        *,
        prefix: str,
        delimiter: str | None,
        cursor: str | None,
        start_after: str | None,
        limit: int,
        include_metadata: bool,
    ) -> ListPage:
        await self._ready()
        start = decode_cursor(cursor) if cursor else b""
        if start_after is not None:
            start = max(start, start_after.encode() + b"\0")
        objects, prefixes, next_start = await asyncio.to_thread(
            self._index.list,
            prefix.encode(),
            delimiter.encode() if delimiter else None,
            start,
            limit,
            include_metadata,
        )
        return ListPage(
            objects,
            prefixes,
            next_start is not None,
            None if next_start is None else encode_cursor(next_start),
        )

    # Multipart uploads.

    async def create_multipart(
        self, key: str, *, http_metadata: dict[str, str], custom_metadata: dict[str, str]
    ) -> str:
        await self._ready()
        upload_id = secrets.token_hex(16)
        upload = Upload(key, http_metadata, custom_metadata, int(time.time() * 1000))
        await asyncio.to_thread(self._index.create_upload, upload_id, upload)
        return upload_id

    def _upload(self, key: str, upload_id: str) -> Upload:
        found = self._index.upload(None, upload_id) if _UPLOAD_ID.fullmatch(upload_id) else None
        if found is None or found.key != key:
            raise NoSuchUpload(f"no multipart upload {upload_id!r} for this key")
        return found

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, body: Body, *, max_bytes: int
    ) -> Part:
        await self._ready()
        await asyncio.to_thread(self._upload, key, upload_id)
        tmp, etag, size, file = await self._receive(body, max_bytes)
        name = f"parts/{secrets.token_hex(16)}"
        final = self.root / name

        def commit() -> Part:
            try:
                self._settle(file, tmp, final)
                with self._index.writing() as db:
                    if self._index.upload(db, upload_id) is None:
                        raise NoSuchUpload(f"multipart upload {upload_id!r} ended meanwhile")
                    self._index.set_part(db, upload_id, PartRow(part_number, etag, size, name))
            except BaseException:
                tmp.unlink(missing_ok=True)
                final.unlink(missing_ok=True)
                raise
            self._empty_trash()
            return Part(part_number, etag)

        return await asyncio.to_thread(commit)

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[Part]) -> BlobMeta:
        await self._ready()
        check_parts(parts)
        raw = key.encode()

        def complete() -> BlobMeta:
            upload = self._upload(key, upload_id)
            stored = self._index.parts(None, upload_id)
            chosen = _chosen_parts(parts, stored)
            version = secrets.token_hex(16)
            tmp = self.root / "tmp" / secrets.token_hex(16)
            final = self.root / object_file(version)
            try:
                with create_file(tmp) as out:
                    for row in chosen:
                        with (self.root / row.file).open("rb") as part:
                            _copy(part, out, row.size)
                    out.flush()
                    self._settle(out, tmp, final)
                meta = BlobMeta(
                    key,
                    sum(row.size for row in chosen),
                    multipart_etag([bytes.fromhex(row.etag) for row in chosen]),
                    now(),
                    version,
                    upload.http_metadata,
                    upload.custom_metadata,
                )
                with self._index.writing() as db:
                    now_parts = self._index.parts(db, upload_id)
                    if self._index.upload(db, upload_id) is None or any(
                        now_parts.get(row.part_number) != row for row in chosen
                    ):
                        raise NoSuchUpload(f"multipart upload {upload_id!r} changed meanwhile")
                    meta = replace(meta, uploaded=now())
                    self._index.replace(db, raw, meta)
                    self._index.end_upload(db, upload_id)
            except BaseException:
                tmp.unlink(missing_ok=True)
                final.unlink(missing_ok=True)
                raise
            self._empty_trash()
            return meta

        return await asyncio.to_thread(complete)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await self._ready()

        def abort() -> None:
            self._upload(key, upload_id)
            with self._index.writing() as db:
                self._index.end_upload(db, upload_id)
            self._empty_trash()

        await asyncio.to_thread(abort)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._index.close)


def _chosen_parts(parts: Sequence[Part], stored: dict[int, PartRow]) -> list[PartRow]:
    chosen: list[PartRow] = []
    for i, part in enumerate(parts):
        row = stored.get(part.part_number)
        if row is None:
            raise InvalidPart(f"part {part.part_number} was not uploaded")
        if row.etag != part.etag.strip('"'):
            raise InvalidPart(f"part {part.part_number} has etag {row.etag}, not {part.etag}")
        if i < len(parts) - 1 and row.size < MIN_PART_BYTES:
            raise InvalidPart(
                f"part {part.part_number} is {row.size} bytes; every part but the last needs"
                f" at least {MIN_PART_BYTES}"
            )
        chosen.append(row)
    return chosen


def _copy(source: IO[bytes], target: IO[bytes], size: int) -> None:
    """Copy ``size`` bytes between files, in the kernel where it can."""
    copied = 0
    try:
        while copied < size:
            n = os.copy_file_range(source.fileno(), target.fileno(), size - copied)
            if n == 0:
                break
            copied += n
    except OSError:
        source.seek(copied)
        target.seek(0, os.SEEK_END)
        while copied < size:
            chunk = source.read(min(CHUNK_BYTES, size - copied))
            if not chunk:
                break
            target.write(chunk)
            copied += len(chunk)
    if copied != size:
        raise OSError(f"a part file is shorter than its {size} recorded bytes")
