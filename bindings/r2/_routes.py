"""The gateway's side of presigned URLs: ``/_raydo/r2/<BINDING>?key=&expires=&signature=``.

In order, for each request: the signature is checked over the request's method, the bucket,
the expiry, the key and the content type if one was signed (403 JSON when missing, tampered,
signed for another method, or expired); then the bucket does the operation, streaming:

- ``GET``/``HEAD``: the body (or headers only), with ``Range: bytes=`` (one range; 206, or
  416 when it starts past the end, however many digits it has), ``If-None-Match`` (304) and
  ``If-Match`` (412); 404 when there is none. The body is served as ``_inert`` says: inline
  with the signed content type, else as an attachment of a passive type.
- ``PUT``: the request body becomes the object (``Content-Type`` and the other
  ``http_metadata`` headers kept, the signed content type instead of the request's when
  there is one, and 403 when the request declares another; ``If-Match`` / ``If-None-Match``
  checked, 412 when they fail); a full disk answers 503 ``storage_full`` with
  ``Retry-After`` and leaves nothing.
  These routes sit before the app's request limit: a body may be up to
  ``blob_put_bytes`` (5 GiB), not ``request_bytes``. A client that disconnects midway leaves
  nothing.
- ``DELETE``: 204.

Every answer, errors included, carries ``_inert.INERT_HEADERS`` (``nosniff`` and a sandboxing
Content-Security-Policy).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from raydo.storage.blobs import (
    BlobError,
    BlobMeta,
    Conditions,
    InvalidRange,
    Range,
    format_http_date,
)
from raydo.storage.errors import StorageFull
from raydo.storage.limits import LimitExceeded, Limits

from ._inert import INERT_HEADERS, served_headers
from ._objects import R2Object, R2ObjectBody
from ._presign import METHODS, PRESIGN_PREFIX, PresignError, Refused, Signer

log = logging.getLogger("raydo.r2")

STORAGE_FULL_RETRY_AFTER = "30"
"""Seconds a client is asked to wait after a full disk (freeing space takes an operator)."""

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.ASCII)
#: A range bound with more digits than this is past the end of any body (a 5 GiB one has 10);
#: it is never handed to ``int``, which refuses strings of more than 4,300 digits.
_MAX_BOUND_DIGITS = 18
_BEYOND_ANY_BODY: int = 10**_MAX_BOUND_DIGITS
_PUT_HEADERS = {
    "content-type": "content_type",
    "content-language": "content_language",
    "content-disposition": "content_disposition",
    "content-encoding": "content_encoding",
    "cache-control": "cache_control",
    "expires": "cache_expiry",
}


class ServedBucket(Protocol):
    """What the routes use of a bucket (:class:`R2Bucket` is one). Said here, rather than
    importing the bucket, because the bucket imports these routes."""

    @property
    def binding(self) -> str: ...

    @property
    def signer(self) -> Signer: ...

    @property
    def limits(self) -> Limits: ...

    async def head(self, key: str) -> R2Object | None: ...

    async def get(
        self, key: str, *, range: Range | None = None, only_if: Conditions | None = None
    ) -> R2ObjectBody | R2Object | None: ...

    async def put(
        self,
        key: str,
        value: object,
        *,
        http_metadata: Mapping[str, Any] | None = None,
        only_if: Conditions | None = None,
    ) -> R2Object | None: ...

    async def delete(self, keys: str) -> None: ...


def presigned_routes(bucket: ServedBucket) -> list[BaseRoute]:
    async def endpoint(request: Request) -> Response:
        return await _serve(bucket, request)

    return [Route(f"{PRESIGN_PREFIX}{bucket.binding}", endpoint, methods=list(METHODS))]


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


async def _serve(bucket: ServedBucket, request: Request) -> Response:
    response = await _answer(bucket, request)
    response.headers.update(INERT_HEADERS)
    return response


async def _answer(bucket: ServedBucket, request: Request) -> Response:
    query = request.query_params
    signed_type = query.get("content-type")
    try:
        key = bucket.signer.verify(
            request.method,
            query.get("key"),
            query.get("expires"),
            query.get("signature"),
            signed_type,
        )
    except Refused as refused:
        return _error(403, refused.code, str(refused), connection="close")
    except PresignError as exc:
        return _error(500, "presign_unavailable", str(exc))
    try:
        if request.method == "PUT":
            return await _put(bucket, key, request, signed_type)
        if request.method == "DELETE":
            await bucket.delete(key)
            return Response(status_code=204)
        return await _get(bucket, key, request, signed_type)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody reads it; the put left nothing behind
    except LimitExceeded as exc:
        return JSONResponse(
            {"error": "limit_exceeded", "limit": exc.limit, "message": str(exc)},
            status_code=413,
            headers={"connection": "close"},
        )
    except BlobError as exc:
        return _error(400, exc.code, str(exc))
    except StorageFull as exc:
        # The backend removed what it had written; the connection stays open for the next
        # request (uvicorn drops the rest of this body).
        return _error(503, "storage_full", str(exc), **{"retry-after": STORAGE_FULL_RETRY_AFTER})
    except OSError as exc:
        log.error("bucket %s: %s %s failed", bucket.binding, request.method, key, exc_info=exc)
        return _error(500, "storage_error", "the bucket's storage failed; see the server's log")


def _headers(obj: R2Object, signed_type: str | None) -> dict[str, str]:
    headers = {
        "etag": obj.http_etag,
        "last-modified": format_http_date(obj.uploaded),
        "accept-ranges": "bytes",
    }
    obj.write_http_metadata(headers)
    headers.update(served_headers(obj.http_metadata, signed_type))
    return headers


async def _get(
    bucket: ServedBucket, key: str, request: Request, signed_type: str | None
) -> Response:
    wanted = _range(request.headers.get("range"))
    only_if = _conditions(request, reading=True)
    try:
        found = await bucket.get(key, range=wanted, only_if=only_if)
    except InvalidRange as exc:
        head = await bucket.head(key)
        size = "*" if head is None else str(head.size)
        return _error(416, exc.code, str(exc), **{"content-range": f"bytes */{size}"})
    if found is None:
        return _error(404, "not_found", "no object under this key")
    headers = _headers(found, signed_type)
    if not isinstance(found, R2ObjectBody):
        # Failed conditions: 412 when If-Match or If-Unmodified-Since failed, else 304.
        assert only_if is not None
        strict = Conditions(
            etag_matches=only_if.etag_matches, uploaded_before=only_if.uploaded_before
        )
        status = 304 if strict.holds(_meta_of(found)) else 412
        return Response(status_code=status, headers=headers)
    status = 200
    length = found.size
    if found.range is not None:
        offset, length = found.range["offset"], found.range["length"]
        status = 206
        if length:
            headers["content-range"] = f"bytes {offset}-{offset + length - 1}/{found.size}"
    headers["content-length"] = str(length)
    if request.method == "HEAD":
        await found.aclose()
        return Response(status_code=status, headers=headers)
    return StreamingResponse(found.body, status_code=status, headers=headers)


def _meta_of(obj: R2Object) -> BlobMeta:
    return BlobMeta(obj.key, obj.size, obj.etag, obj.uploaded, obj.version)


def _range(header: str | None) -> Range | None:
    """One ``bytes=`` range as a :class:`Range`; anything else (several ranges, other
    units, garbage) is ignored, as HTTP allows, and the whole body is served."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = (_bound(text) for text in match.groups())
    if first is not None and last is not None:
        if last < first:
            return None
        return Range(offset=first, length=last - first + 1)
    if first is not None:
        return Range(offset=first)
    if last is not None and last > 0:
        return Range(suffix=last)
    return None


def _bound(digits: str) -> int | None:
    """A range bound's value; one too large for any body counts as just past every body (so
    a start there is 416, an end or a suffix there means the whole body, as HTTP says)."""
    if not digits:
        return None
    significant = digits.lstrip("0")
    if len(significant) > _MAX_BOUND_DIGITS:
        return _BEYOND_ANY_BODY
    return int(significant or "0")


def _conditions(request: Request, *, reading: bool) -> Conditions | None:
    headers = request.headers
    fields: dict[str, Any] = {}
    if "if-match" in headers:
        fields["etag_matches"] = headers["if-match"]
    if "if-none-match" in headers:
        fields["etag_does_not_match"] = headers["if-none-match"]
    for header, name in (
        ("if-unmodified-since", "uploaded_before"),
        ("if-modified-since", "uploaded_after"),
    ):
        if header in headers and (reading or name == "uploaded_before"):
            try:
                fields[name] = parsedate_to_datetime(headers[header])
            except (TypeError, ValueError):
                continue  # HTTP: an invalid date is ignored
    return Conditions(**fields) if fields else None


async def _put(
    bucket: ServedBucket, key: str, request: Request, signed_type: str | None
) -> Response:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > bucket.limits.blob_put_bytes:
        raise LimitExceeded(
            "blob_put_bytes",
            f"the body is {declared} bytes; at most {bucket.limits.blob_put_bytes} are allowed",
        )
    http = {name: request.headers[h] for h, name in _PUT_HEADERS.items() if h in request.headers}
    if signed_type is not None:
        declared_type = http.get("content_type")
        if declared_type is not None and declared_type.strip().lower() != signed_type.lower():
            return _error(
                403,
                "signature_mismatch",
                f"this URL was signed for Content-Type {signed_type!r}",
                connection="close",
            )
        http["content_type"] = signed_type
    stored = await bucket.put(
        key, request.stream(), http_metadata=http, only_if=_conditions(request, reading=False)
    )
    if stored is None:
        return _error(412, "precondition_failed", "the object does not meet the conditions")
    return JSONResponse(
        {
            "key": stored.key,
            "size": stored.size,
            "etag": stored.etag,
            "version": stored.version,
            "uploaded": stored.uploaded.isoformat(),
        },
        headers={"etag": stored.http_etag},
    )
