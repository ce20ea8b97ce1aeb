"""A bucket as every process sees it (``env.FILES``): :class:`R2Bucket`, and its multipart
uploads.

It talks to its backend directly, with no object in between: the filesystem backend's SQLite
index is already the single commit point every process shares, and bodies never have to fit
one RPC message. Bodies stream both ways. The Python names are R2's in snake case.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from starlette.routing import BaseRoute

from raydo.storage.blobs import (
    MAX_BATCH,
    BlobBackend,
    Body,
    Conditions,
    InvalidArgument,
    Part,
    Range,
    check_key,
    check_metadata,
    check_part_number,
)
from raydo.storage.errors import DISK_FULL_ERRNOS, StorageFull, disk_error
from raydo.storage.limits import Limits

from ._inert import BadContentType, check_signed_type
from ._objects import R2Object, R2ObjectBody, R2Objects
from ._presign import MAX_EXPIRES_IN, METHODS, Signer
from ._routes import presigned_routes

_INCLUDE = ("http_metadata", "custom_metadata")

R2UploadedPart = Part


class R2MultipartUpload:
    """A multipart upload in progress: parts (each but the last at least 5 MiB) upload in any
    order, even from several processes, then ``complete`` joins them in part-number order."""

    def __init__(self, bucket: R2Bucket, key: str, upload_id: str) -> None:
        self._bucket = bucket
        self.key = key
        self.upload_id = upload_id

    async def upload_part(self, part_number: int, value: object) -> R2UploadedPart:
        """Store one part (1 to 10,000; uploading a number again replaces it)."""
        check_part_number(part_number)
        bucket = self._bucket
        with disk_errors_as_storage_full():
            return await bucket.backend.upload_part(
                self.key,
                self.upload_id,
                part_number,
                _body(value),
                max_bytes=bucket.limits.blob_put_bytes,
            )

    async def complete(self, parts: Iterable[Part | Mapping[str, Any]]) -> R2Object:
        """Join the listed parts, in ascending part number, into the object; parts not
        listed are dropped. The upload then ends."""
        listed = [_part(p) for p in parts]
        with disk_errors_as_storage_full():
            meta = await self._bucket.backend.complete_multipart(self.key, self.upload_id, listed)
        return R2Object(meta)

    async def abort(self) -> None:
        """End the upload and drop its parts (:class:`NoSuchUpload` if it is already over)."""
        await self._bucket.backend.abort_multipart(self.key, self.upload_id)


class R2Bucket:
    """``env.FILES``: one bucket.

    Keys are ``str`` of 1 to ``blob_key_bytes`` (1,024) UTF-8 bytes without NUL; they are
    data, never paths. Values to ``put`` are ``bytes``, ``str``, ``None`` (empty), an
    iterable or async iterable of bytes (``request.stream()``), or another object's
    :class:`R2ObjectBody`. Errors: :class:`storage.blobs.BlobError` subclasses for bad
    arguments, :class:`storage.LimitExceeded` for sizes.
    """

    def __init__(
        self,
        *,
        binding: str,
        bucket_name: str,
        backend: BlobBackend,
        limits: Limits,
        signer: Signer,
    ) -> None:
        self.binding = binding
        self.bucket_name = bucket_name
        self.backend = backend
        self.limits = limits
        self.signer = signer

    async def head(self, key: str) -> R2Object | None:
        """The object's metadata, or None."""
        check_key(key, self.limits)
        with disk_errors_as_storage_full():
            meta = await self.backend.head(key)
        return None if meta is None else R2Object(meta)

    async def get(
        self,
        key: str,
        *,
        range: Range | Mapping[str, int] | None = None,
        only_if: Conditions | Mapping[str, Any] | None = None,
    ) -> R2ObjectBody | R2Object | None:
        """The object with its body; None when there is none.

        ``range``: ``{"offset": o, "length": n}``, ``{"offset": o}`` or ``{"suffix": n}``
        (:class:`InvalidRange` when it starts past the end). ``only_if``: R2's conditions
        (``etag_matches``, ``etag_does_not_match``, ``uploaded_before``, ``uploaded_after``);
        when they fail the answer is an :class:`R2Object` without a body.
        """
        check_key(key, self.limits)
        with disk_errors_as_storage_full():
            found = await self.backend.get(
                key, range=Range.coerce(range), only_if=Conditions.coerce(only_if)
            )
        if found is None:
            return None
        meta, body, served = found
        return R2Object(meta) if body is None else R2ObjectBody(meta, body, served)

    async def put(
        self,
        key: str,
        value: object,
        *,
        http_metadata: Mapping[str, Any] | None = None,
        custom_metadata: Mapping[str, str] | None = None,
        only_if: Conditions | Mapping[str, Any] | None = None,
    ) -> R2Object | None:
        """Store ``value`` under ``key``, replacing any object, and return its metadata;
        None (and nothing stored) when ``only_if`` fails.

        In order: the key, metadata and conditions are checked; the body streams to the
        backend (at most ``blob_put_bytes``); the object becomes visible whole, or, if the
        body fails (a client that disconnects, a limit), not at all.
        """
        check_key(key, self.limits)
        http, custom = check_metadata(http_metadata, custom_metadata, self.limits)
        conditions = Conditions.coerce(only_if)
        with disk_errors_as_storage_full():
            meta = await self.backend.put(
                key,
                _body(value),
                http_metadata=http,
                custom_metadata=custom,
                only_if=conditions,
                max_bytes=self.limits.blob_put_bytes,
            )
        return None if meta is None else R2Object(meta)

    async def delete(self, keys: str | Iterable[str]) -> None:
        """Delete one key or up to 1,000; keys with no object are fine."""
        listed = [keys] if isinstance(keys, str) else list(keys)
        if len(listed) > MAX_BATCH:
            raise InvalidArgument(f"delete takes at most {MAX_BATCH} keys, got {len(listed)}")
        for key in listed:
            check_key(key, self.limits)
        if listed:
            with disk_errors_as_storage_full():
                await self.backend.delete(list(dict.fromkeys(listed)))

    async def list(
        self,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        cursor: str | None = None,
        start_after: str | None = None,
        limit: int = MAX_BATCH,
        include: Iterable[str] = (),
    ) -> R2Objects:
        """Objects in key order (UTF-8 bytes), at most ``limit`` (1 to 1,000) objects and
        delimited prefixes together.

        With a ``delimiter``, keys holding it after ``prefix`` are rolled up into
        ``delimited_prefixes`` (each once). ``truncated`` says more follow; pass ``cursor``
        back to continue. Objects carry their HTTP and custom metadata only when ``include``
        names ``"http_metadata"`` / ``"custom_metadata"``.
        """
        if not isinstance(prefix, str) or "\0" in prefix:
            raise InvalidArgument("prefix is a string without NUL")
        self.limits.check("blob_key_bytes", len(prefix.encode()), "the prefix")
        if delimiter is not None and (
            not isinstance(delimiter, str) or not delimiter or "\0" in delimiter
        ):
            raise InvalidArgument("delimiter is a non-empty string without NUL")
        if start_after is not None:
            check_key(start_after, self.limits)
        if cursor is not None and (not isinstance(cursor, str) or not cursor or len(cursor) > 4096):
            raise InvalidArgument("malformed list cursor")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BATCH:
            raise InvalidArgument(f"limit is an integer from 1 to {MAX_BATCH}")
        wanted = [include] if isinstance(include, str) else list(include)
        unknown = set(wanted) - set(_INCLUDE)
        if unknown:
            raise InvalidArgument(f"include takes {', '.join(_INCLUDE)}; not {sorted(unknown)}")
        page = await self.backend.list(
            prefix=prefix,
            delimiter=delimiter,
            cursor=cursor,
            start_after=start_after,
            limit=limit,
            include_metadata=bool(wanted),
        )
        objects = []
        for meta in page.objects:
            obj = R2Object(meta)
            if "http_metadata" not in wanted:
                obj.http_metadata = {}
            if "custom_metadata" not in wanted:
                obj.custom_metadata = {}
            objects.append(obj)
        return R2Objects(objects, page.delimited_prefixes, page.truncated, page.cursor)

    async def create_multipart_upload(
        self,
        key: str,
        *,
        http_metadata: Mapping[str, Any] | None = None,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> R2MultipartUpload:
        """Start a multipart upload; the metadata is the finished object's."""
        check_key(key, self.limits)
        http, custom = check_metadata(http_metadata, custom_metadata, self.limits)
        upload_id = await self.backend.create_multipart(
            key, http_metadata=http, custom_metadata=custom
        )
        return R2MultipartUpload(self, key, upload_id)

    def resume_multipart_upload(self, key: str, upload_id: str) -> R2MultipartUpload:
        """The upload ``upload_id`` of ``key`` (no I/O: a wrong id fails on first use)."""
        check_key(key, self.limits)
        if not isinstance(upload_id, str) or not 0 < len(upload_id) <= 1024:
            raise InvalidArgument("upload_id is a non-empty string")
        return R2MultipartUpload(self, key, upload_id)

    def create_presigned_url(
        self,
        key: str,
        method: str = "GET",
        expires_in: int = 3600,
        *,
        base_url: str = "",
        content_type: str | None = None,
    ) -> str:
        """A URL that lets anyone holding it ``method`` (GET, HEAD, PUT or DELETE) the key for
        ``expires_in`` seconds (at most 7 days), served by the gateway under ``/_raydo/r2/``.
        Without ``base_url`` (e.g. ``str(request.base_url)``) the URL is a path.

        A GET or HEAD URL serves the body as an attachment of a passive type unless
        ``content_type`` fixes the type it is served inline with; a PUT URL with
        ``content_type`` stores that type and refuses a request declaring another. Either way
        the responses carry ``nosniff`` and a sandboxing Content-Security-Policy.
        """
        check_key(key, self.limits)
        if content_type is not None:
            try:
                check_signed_type(content_type)
            except BadContentType as exc:
                raise InvalidArgument(str(exc)) from None
        if method not in METHODS:
            raise InvalidArgument(f"method is one of {', '.join(METHODS)}, not {method!r}")
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)
            or not 1 <= expires_in <= MAX_EXPIRES_IN
        ):
            raise InvalidArgument(f"expires_in is an integer from 1 to {MAX_EXPIRES_IN} seconds")
        return self.signer.url(method, key, expires_in, base_url, content_type)

    def gateway_routes(self) -> builtins.list[BaseRoute]:
        """The routes serving this bucket's presigned URLs (the gateway mounts them)."""
        return presigned_routes(self)

    async def aclose(self) -> None:
        await self.backend.aclose()


@contextmanager
def disk_errors_as_storage_full() -> Iterator[None]:
    """A write to the bucket that the disk has no room for is :class:`StorageFull` (HTTP 503,
    try later), not an OSError with the backend's paths in it; the backend has already
    removed what it had written."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL_ERRNOS:
            raise
        raise disk_error(exc, "cannot store the blob") from None
    except sqlite3.OperationalError as exc:  # the bucket's index (it has no size limit)
        if "database or disk is full" not in str(exc):
            raise
        raise StorageFull("cannot store the blob: the disk holding the bucket is full") from None


def _part(part: Part | Mapping[str, Any]) -> Part:
    if isinstance(part, Part):
        return part
    if isinstance(part, Mapping) and isinstance(part.get("etag"), str):
        return Part(check_part_number(part.get("part_number")), part["etag"])
    raise InvalidArgument("a part is an R2UploadedPart or {'part_number': n, 'etag': s}")


def _body(value: object) -> Body:
    """Any accepted put value as an async iterator of bytes (nothing is read yet)."""
    if isinstance(value, R2ObjectBody):
        return value.body
    if value is None:
        return _chunks([])
    if isinstance(value, str):
        return _chunks([value.encode()])
    if isinstance(value, bytes | bytearray | memoryview):
        return _chunks([bytes(value)])
    if isinstance(value, AsyncIterable):
        return _checked(value)
    if isinstance(value, Iterable):
        return _chunks(value)
    raise TypeError(
        "a put value is bytes, str, None, an (async) iterable of bytes or an R2ObjectBody,"
        f" not {type(value).__name__}"
    )


async def _chunks(items: Iterable[object]) -> AsyncIterator[bytes]:
    for item in items:
        yield _chunk(item)


async def _checked(items: AsyncIterable[object]) -> AsyncIterator[bytes]:
    async for item in items:
        yield _chunk(item)


def _chunk(item: object) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    raise TypeError(f"a body yields bytes, not {type(item).__name__}")
