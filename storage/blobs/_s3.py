"""A blob backend on any S3-compatible service (AWS S3, MinIO, Ceph, R2 itself), via boto3.

boto3 blocks, so each call runs in a worker thread. Bodies stay bounded in memory both ways:

- a put (or a part) is first spooled (MD5 taken, size checked) into a temp file under the
  bucket's local folder, kept in memory only up to 8 MiB, then sent with its MD5 for S3 to
  verify. So a body that fails or is cut off never reaches S3, and a single put's etag is the
  body's MD5, as with the filesystem backend;
- a get reads the response in chunks of 1 MiB.

The raydo metadata (custom metadata, HTTP metadata, version) travels as S3 user metadata
(``x-amz-meta-raydo-*``, JSON in ASCII); HTTP metadata is also set as S3's own headers, so
other S3 clients see the content type. Conditions ``etag_matches=<one etag>`` and
``etag_does_not_match="*"`` on put are checked by S3 atomically (``If-Match``,
``If-None-Match``); the others are checked against a HEAD just before, which a concurrent
writer can race.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from ..owner_only import make_folders
from ._index import decode_cursor, encode_cursor
from ._types import (
    CHUNK_BYTES,
    BlobMeta,
    Body,
    Conditions,
    InvalidArgument,
    InvalidKey,
    InvalidPart,
    ListPage,
    NoSuchUpload,
    Part,
    Range,
    check_parts,
    now,
    receive_body,
)

T = TypeVar("T")
_SPOOL_MEMORY = 8 * 1024 * 1024
_NATIVE = {
    "content_type": "ContentType",
    "content_language": "ContentLanguage",
    "content_disposition": "ContentDisposition",
    "content_encoding": "ContentEncoding",
    "cache_control": "CacheControl",
}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _missing(exc: BaseException) -> bool:
    return _code(exc) in ("404", "NoSuchKey", "NotFound")


class S3Backend:
    """A bucket that lives in an S3 bucket; the local ``spool`` folder holds uploads in flight."""

    def __init__(
        self,
        *,
        bucket: str,
        spool: Path,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self._spool = spool
        self._endpoint_url = endpoint_url
        self._region = region
        self._client_: Any = None

    def _client(self) -> Any:
        if self._client_ is None:
            import boto3
            from botocore.config import Config

            self._client_ = boto3.session.Session().client(
                "s3",
                endpoint_url=self._endpoint_url,
                region_name=self._region,
                config=Config(
                    s3={"addressing_style": "path" if self._endpoint_url else "auto"},
                    retries={"max_attempts": 3, "mode": "standard"},
                    max_pool_connections=32,
                ),
            )
        return self._client_

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        def call() -> Any:
            method: Callable[..., Any] = getattr(self._client(), operation)
            return method(Bucket=self.bucket, **kwargs)

        try:
            return await asyncio.to_thread(call)
        except Exception as exc:
            # Some S3-compatible servers refuse keys AWS takes (SeaweedFS: a "." or ".."
            # segment, a segment over 255 bytes): the caller's key, not the runtime, is at
            # fault.
            refused = _code(exc) in ("InvalidRequest", "KeyTooLongError")
            if refused and "Key" in kwargs and "UploadId" not in kwargs:
                raise InvalidKey(f"the S3 store refused the key {kwargs['Key']!r} ({exc})") from exc
            raise

    # Bodies in and out.

    async def _spool_body(self, body: Body, max_bytes: int) -> tuple[IO[bytes], str, int]:
        """The body in a temp file (memory up to 8 MiB): ``(file at 0, md5 hex, size)``."""
        make_folders(self._spool)
        file: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by callers)
            max_size=_SPOOL_MEMORY, mode="w+b", dir=str(self._spool)
        )
        try:
            md5, size = await receive_body(body, file, max_bytes)
            file.seek(0)
        except BaseException:
            file.close()
            raise
        return file, md5, size

    async def _stream(self, stream: Any) -> AsyncIterator[bytes]:
        try:
            while True:
                chunk: bytes = await asyncio.to_thread(stream.read, CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk
        finally:
            stream.close()

    def _meta(self, key: str, response: dict[str, Any], size: int | None = None) -> BlobMeta:
        user = response.get("Metadata") or {}
        etag = str(response.get("ETag", "")).strip('"')
        try:
            http = json.loads(user.get("raydo-http", "{}"))
            custom = json.loads(user.get("raydo-custom", "{}"))
        except ValueError:  # written by another S3 client
            http, custom = {}, {}
        if "raydo-http" not in user:  # written by another S3 client
            http = {
                ours: response[theirs] for ours, theirs in _NATIVE.items() if theirs in response
            }
        uploaded = response.get("LastModified")
        return BlobMeta(
            key=key,
            size=int(response.get("ContentLength", 0)) if size is None else size,
            etag=etag,
            uploaded=uploaded if isinstance(uploaded, datetime) else now(),
            version=str(user.get("raydo-version") or etag),
            http_metadata=http if isinstance(http, dict) else {},
            custom_metadata=custom if isinstance(custom, dict) else {},
        )

    @staticmethod
    def _headers(
        http_metadata: dict[str, str], custom_metadata: dict[str, str], version: str
    ) -> dict[str, Any]:
        headers: dict[str, Any] = {
            theirs: http_metadata[ours] for ours, theirs in _NATIVE.items() if ours in http_metadata
        }
        headers["Metadata"] = {
            "raydo-http": json.dumps(http_metadata, separators=(",", ":")),
            "raydo-custom": json.dumps(custom_metadata, separators=(",", ":")),
            "raydo-version": version,
        }
        return headers

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
        native: dict[str, str] = {}
        if only_if is not None:
            if not only_if.holds(await self.head(key)):
                return None
            native = _native_conditions(only_if)
        file, etag, size = await self._spool_body(body, max_bytes)
        version = secrets.token_hex(16)
        try:
            await self._call(
                "put_object",
                Key=key,
                Body=file,
                ContentLength=size,
                ContentMD5=base64.b64encode(bytes.fromhex(etag)).decode(),
                **self._headers(http_metadata, custom_metadata, version),
                **native,
            )
        except Exception as exc:
            if _code(exc) in ("PreconditionFailed", "412") or (native and _missing(exc)):
                return None
            raise
        finally:
            file.close()
        # The answer carries S3's own upload time, so it equals what head, get and list say.
        stored = await self.head(key)
        if stored is not None and stored.version == version:
            return stored
        # Replaced or deleted meanwhile: S3 keeps its times to the second.
        return BlobMeta(
            key, size, etag, now().replace(microsecond=0), version, http_metadata, custom_metadata
        )

    async def get(
        self, key: str, *, range: Range | None, only_if: Conditions | None
    ) -> tuple[BlobMeta, Body | None, tuple[int, int] | None] | None:
        wanted = _range_header(range) if range is not None else None
        if range is not None and wanted is None:  # a zero-length range: no bytes to ask for
            meta = await self.head(key)
            if meta is None:
                return None
            offset, length = range.resolve(meta.size)
            if only_if is not None and not only_if.holds(meta):
                return meta, None, None
            return meta, _empty(), (offset, length)
        try:
            extra = {"Range": wanted} if wanted else {}
            response = await self._call("get_object", Key=key, **extra)
        except Exception as exc:
            if _missing(exc):
                return None
            if _code(exc) == "InvalidRange" and range is not None:
                meta = await self.head(key)
                if meta is None:
                    return None
                range.resolve(meta.size)  # raises InvalidRange, or the object is empty
                return meta, _empty(), (0, 0)
            raise
        total = None
        served: tuple[int, int] | None = None
        match = _CONTENT_RANGE.fullmatch(str(response.get("ContentRange", "")))
        if match:
            first, last, total = (int(g) for g in match.groups())
            served = (first, last - first + 1)
        elif range is not None:
            served = (0, int(response.get("ContentLength", 0)))
        meta = self._meta(key, response, total)
        if only_if is not None and not only_if.holds(meta):
            await asyncio.to_thread(response["Body"].close)
            return meta, None, None
        return meta, self._stream(response["Body"]), served

    async def head(self, key: str) -> BlobMeta | None:
        try:
            response = await self._call("head_object", Key=key)
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        return self._meta(key, response)

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        response = await self._call(
            "delete_objects",
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise OSError(f"S3 refused to delete {first.get('Key')!r}: {first.get('Message')}")

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
        args: dict[str, Any] = {"Prefix": prefix, "MaxKeys": limit}
        if delimiter:
            args["Delimiter"] = delimiter
        if cursor:
            # S3's tokens travel wrapped in the same base64 as the filesystem's cursors, so a
            # malformed cursor is refused here rather than by each S3 in its own way.
            args["ContinuationToken"] = decode_cursor(cursor).decode("utf-8", "replace")
        if start_after is not None:
            args["StartAfter"] = start_after
        try:
            response = await self._call("list_objects_v2", **args)
        except Exception as exc:
            if cursor and _code(exc) in ("InvalidArgument", "400"):
                raise InvalidArgument("malformed list cursor") from exc
            raise
        objects = [
            BlobMeta(
                key=item["Key"],
                size=int(item["Size"]),
                etag=str(item["ETag"]).strip('"'),
                uploaded=item["LastModified"],
                version=str(item["ETag"]).strip('"'),
            )
            for item in response.get("Contents") or []
        ]
        if include_metadata and objects:
            heads = await asyncio.gather(*(self.head(meta.key) for meta in objects))
            objects = [head or meta for head, meta in zip(heads, objects, strict=True)]
        truncated = bool(response.get("IsTruncated"))
        return ListPage(
            objects,
            [item["Prefix"] for item in response.get("CommonPrefixes") or []],
            truncated,
            encode_cursor(str(response["NextContinuationToken"]).encode()) if truncated else None,
        )

    # Multipart uploads.

    async def create_multipart(
        self, key: str, *, http_metadata: dict[str, str], custom_metadata: dict[str, str]
    ) -> str:
        headers = self._headers(http_metadata, custom_metadata, secrets.token_hex(16))
        response = await self._call("create_multipart_upload", Key=key, **headers)
        return str(response["UploadId"])

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, body: Body, *, max_bytes: int
    ) -> Part:
        await self._check_upload(key, upload_id)  # before the body is read
        file, etag, size = await self._spool_body(body, max_bytes)
        try:
            response = await self._call(
                "upload_part",
                Key=key,
                UploadId=upload_id,
                PartNumber=part_number,
                Body=file,
                ContentLength=size,
                ContentMD5=base64.b64encode(bytes.fromhex(etag)).decode(),
            )
        except Exception as exc:
            raise _upload_error(exc, upload_id) from exc
        finally:
            file.close()
        return Part(part_number, str(response["ETag"]).strip('"'))

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[Part]) -> BlobMeta:
        check_parts(parts)
        await self._check_upload(key, upload_id)
        try:
            await self._call(
                "complete_multipart_upload",
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [
                        {"PartNumber": p.part_number, "ETag": f'"{p.etag.strip(chr(34))}"'}
                        for p in parts
                    ]
                },
            )
        except Exception as exc:
            raise _upload_error(exc, upload_id) from exc
        meta = await self.head(key)
        if meta is None:
            raise OSError(f"S3 completed the upload of {key!r} but does not show the object")
        return meta

    async def _check_upload(self, key: str, upload_id: str) -> None:
        """:class:`NoSuchUpload` unless the upload is in progress (some S3 servers fail
        obscurely when asked to add to or complete an upload that is over)."""
        try:
            response = await self._call("list_parts", Key=key, UploadId=upload_id, MaxParts=1)
        except Exception as exc:
            raise _upload_error(exc, upload_id) from exc
        if response.get("Key", key) != key:
            raise NoSuchUpload(f"no multipart upload {upload_id!r} for this key")

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            await self._call("abort_multipart_upload", Key=key, UploadId=upload_id)
        except Exception as exc:
            raise _upload_error(exc, upload_id) from exc

    async def aclose(self) -> None:
        client, self._client_ = self._client_, None
        if client is not None:
            await asyncio.to_thread(client.close)


def _upload_error(exc: Exception, upload_id: str) -> Exception:
    code = _code(exc)
    if code in ("NoSuchUpload", "InvalidRequest"):  # InvalidRequest: an id the store can't parse
        return NoSuchUpload(f"no multipart upload {upload_id!r} for this key")
    if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
        return InvalidPart(f"S3 refused the parts: {code}")
    return exc


def _native_conditions(only_if: Conditions) -> dict[str, str]:
    """The conditions S3 itself can check atomically at write time."""
    native: dict[str, str] = {}
    matches = only_if.etag_matches
    if isinstance(matches, str) and "," not in matches and matches.strip() != "*":
        native["IfMatch"] = f'"{matches.strip().strip(chr(34))}"'
    if isinstance(only_if.etag_does_not_match, str) and only_if.etag_does_not_match == "*":
        native["IfNoneMatch"] = "*"
    return native


def _range_header(range: Range) -> str | None:
    if range.suffix is not None:
        return f"bytes=-{range.suffix}"
    offset = range.offset or 0
    if range.length is None:
        return f"bytes={offset}-"
    if range.length == 0:
        return None
    return f"bytes={offset}-{offset + range.length - 1}"


async def _empty() -> AsyncIterator[bytes]:
    return
    yield
