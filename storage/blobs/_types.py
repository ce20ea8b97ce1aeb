"""What every blob backend shares: metadata, ranges, conditions, keys, errors and the Protocol.

A backend stores objects (bodies with metadata) under keys in one bucket. Keys are strings of
1 to ``blob_key_bytes`` UTF-8 bytes without NUL; they are data, never paths. Bodies travel as
async iterators of ``bytes`` both ways, so no body has to fit in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Protocol

from ..limits import LimitExceeded, Limits

#: Smallest part of a multipart upload, except the last (as S3 and R2 require).
MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PARTS = 10_000
#: Keys one ``delete`` and objects one ``list`` page may hold.
MAX_BATCH = 1000
#: Bytes per chunk when a backend reads a body.
CHUNK_BYTES = 1024 * 1024

#: ``http_metadata`` fields, as R2 names them in snake case.
HTTP_FIELDS = (
    "content_type",
    "content_language",
    "content_disposition",
    "content_encoding",
    "cache_control",
    "cache_expiry",
)
_HTTP_VALUE_MAX = 1024


class BlobError(ValueError):
    """Base of the errors a blob bucket raises for a bad request; ``code`` is a short name."""

    code = "blob_error"


class InvalidKey(BlobError):
    code = "invalid_key"


class InvalidRange(BlobError):
    """The range starts at or past the end of the object (HTTP 416)."""

    code = "invalid_range"


class InvalidArgument(BlobError):
    code = "invalid_argument"


class NoSuchUpload(BlobError):
    """The multipart upload does not exist (never created, completed or aborted)."""

    code = "no_such_upload"


class InvalidPart(BlobError):
    """A part named on completion is missing, has another etag, is out of order or too small."""

    code = "invalid_part"


def check_key(key: object, limits: Limits) -> bytes:
    """The key's UTF-8 bytes, or :class:`InvalidKey`/:class:`LimitExceeded` saying why not."""
    if not isinstance(key, str):
        raise InvalidKey(f"a key is a string, not {type(key).__name__}")
    if not key:
        raise InvalidKey("a key may not be empty")
    if "\0" in key:
        raise InvalidKey("a key may not contain NUL")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKey("a key must be valid Unicode (no lone surrogates)") from None
    limits.check("blob_key_bytes", len(raw), "the key")
    return raw


def check_metadata(
    http: Mapping[str, object] | None, custom: Mapping[str, object] | None, limits: Limits
) -> tuple[dict[str, str], dict[str, str]]:
    """Checked copies of an object's HTTP and custom metadata.

    HTTP fields are the names in :data:`HTTP_FIELDS` with printable ASCII values (they become
    response headers); custom metadata maps strings to strings, at most
    ``blob_metadata_bytes`` UTF-8 bytes of keys and values together.
    """
    http_out: dict[str, str] = {}
    for name, value in (http or {}).items():
        if name not in HTTP_FIELDS:
            raise InvalidArgument(
                f"unknown http_metadata field {name!r}; known: {', '.join(HTTP_FIELDS)}"
            )
        if isinstance(value, datetime) and name == "cache_expiry":
            value = format_http_date(value)
        if not (
            isinstance(value, str)
            and len(value) <= _HTTP_VALUE_MAX
            and all(" " <= c <= "~" for c in value)
        ):
            raise InvalidArgument(
                f"http_metadata {name} must be printable ASCII of at most {_HTTP_VALUE_MAX}"
                " characters"
            )
        http_out[name] = value
    custom_out: dict[str, str] = {}
    size = 0
    for name, value in (custom or {}).items():
        if not isinstance(name, str) or not isinstance(value, str) or not name:
            raise InvalidArgument("custom_metadata maps non-empty strings to strings")
        if "\0" in name or "\0" in value:
            raise InvalidArgument("custom_metadata may not contain NUL")
        try:
            size += len(name.encode()) + len(value.encode())
        except UnicodeEncodeError:
            raise InvalidArgument("custom_metadata must be valid Unicode") from None
        custom_out[name] = value
    limits.check("blob_metadata_bytes", size, "custom_metadata")
    return http_out, custom_out


def format_http_date(when: datetime) -> str:
    from email.utils import format_datetime

    return format_datetime(when.astimezone(UTC), usegmt=True)


@dataclass(frozen=True, slots=True)
class BlobMeta:
    """One stored object's metadata; ``etag`` is bare (no quotes)."""

    key: str
    size: int
    etag: str
    uploaded: datetime
    version: str
    http_metadata: dict[str, str] = field(default_factory=dict)
    custom_metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Range:
    """Part of a body: ``offset`` (and ``length``), or the last ``suffix`` bytes."""

    offset: int | None = None
    length: int | None = None
    suffix: int | None = None

    @classmethod
    def coerce(cls, value: Range | Mapping[str, int] | None) -> Range | None:
        """A :class:`Range` from itself, ``None`` or a dict ``{"offset", "length", "suffix"}``
        (R2's shape), checked."""
        if value is None or isinstance(value, Range):
            found = value
        elif isinstance(value, Mapping):
            unknown = set(value) - {"offset", "length", "suffix"}
            if unknown:
                raise InvalidArgument(f"unknown range field(s): {', '.join(sorted(unknown))}")
            found = cls(value.get("offset"), value.get("length"), value.get("suffix"))
        else:
            raise InvalidArgument("a range is a Range or a dict of offset, length, suffix")
        if found is not None:
            found.check()
        return found

    def check(self) -> None:
        for name in ("offset", "length", "suffix"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidArgument(f"range {name} must be an integer")
        if self.suffix is not None:
            if self.offset is not None or self.length is not None:
                raise InvalidArgument("a range has a suffix or an offset and length, not both")
            if self.suffix <= 0:
                raise InvalidArgument("range suffix must be positive")
        else:
            if self.offset is None and self.length is None:
                raise InvalidArgument("a range needs an offset, a length or a suffix")
            if (self.offset or 0) < 0 or (self.length is not None and self.length < 0):
                raise InvalidArgument("range offset and length must not be negative")

    def resolve(self, size: int) -> tuple[int, int]:
        """``(offset, length)`` within an object of ``size`` bytes; :class:`InvalidRange` when
        the range starts past the end (a range starting at the end of an empty body is fine)."""
        if self.suffix is not None:
            length = min(self.suffix, size)
            return size - length, length
        offset = self.offset or 0
        if offset > size or (offset == size and size > 0):
            raise InvalidRange(f"range starts at {offset}, the object has {size} bytes")
        left = size - offset
        return offset, left if self.length is None else min(self.length, left)


def _bare(etag: str) -> str:
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag[1:-1] if len(etag) >= 2 and etag[0] == etag[-1] == '"' else etag


def _etags(value: str | Sequence[str]) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        raise InvalidArgument("etag conditions are strings")
    return [_bare(part) for item in items for part in item.split(",") if part.strip()]


@dataclass(frozen=True, slots=True)
class Conditions:
    """R2's ``onlyIf``: compare-and-act on the stored object, with HTTP's precedence.

    ``etag_matches`` / ``etag_does_not_match`` take an etag (quoted or not), a list, or
    ``"*"`` (any object). Uploaded times compare at second precision, as HTTP dates do.
    """

    etag_matches: str | Sequence[str] | None = None
    etag_does_not_match: str | Sequence[str] | None = None
    uploaded_before: datetime | None = None
    uploaded_after: datetime | None = None

    @classmethod
    def coerce(cls, value: Conditions | Mapping[str, object] | None) -> Conditions | None:
        if value is None or isinstance(value, Conditions):
            return value
        if not isinstance(value, Mapping):
            raise InvalidArgument("only_if is a Conditions or a dict")
        unknown = set(value) - {
            "etag_matches",
            "etag_does_not_match",
            "uploaded_before",
            "uploaded_after",
        }
        if unknown:
            raise InvalidArgument(f"unknown only_if field(s): {', '.join(sorted(unknown))}")
        found = cls(**value)  # type: ignore[arg-type]
        for when in (found.uploaded_before, found.uploaded_after):
            if when is not None and not isinstance(when, datetime):
                raise InvalidArgument("uploaded_before and uploaded_after are datetimes")
        return found

    def holds(self, meta: BlobMeta | None) -> bool:
        """Whether an action guarded by these conditions may go ahead on ``meta`` (``None``:
        no object). With no object only ``etag_matches`` fails."""
        if meta is None:
            return self.etag_matches is None
        uploaded = int(meta.uploaded.timestamp())
        if self.etag_matches is not None:
            wanted = _etags(self.etag_matches)
            if "*" not in wanted and meta.etag not in wanted:
                return False
        elif self.uploaded_before is not None and uploaded > int(
            _aware(self.uploaded_before).timestamp()
        ):
            return False
        if self.etag_does_not_match is not None:
            unwanted = _etags(self.etag_does_not_match)
            if "*" in unwanted or meta.etag in unwanted:
                return False
        elif self.uploaded_after is not None and uploaded <= int(
            _aware(self.uploaded_after).timestamp()
        ):
            return False
        return True


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing, in key order (UTF-8 bytes)."""

    objects: list[BlobMeta]
    delimited_prefixes: list[str]
    truncated: bool
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Part:
    """A part of a multipart upload, as ``upload_part`` returns it."""

    part_number: int
    etag: str


def multipart_etag(part_md5s: Sequence[bytes]) -> str:
    """S3's etag of a multipart object: the MD5 of the parts' binary MD5s, then ``-N``."""
    digest = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f"{digest}-{len(part_md5s)}"


def check_parts(parts: Sequence[Part]) -> None:
    if not parts:
        raise InvalidPart("a multipart upload needs at least one part")
    numbers = [p.part_number for p in parts]
    if numbers != sorted(set(numbers)):
        raise InvalidPart("parts must be listed once each, in ascending part number")


def check_part_number(number: object) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_PARTS:
        raise InvalidArgument(f"a part number is an integer from 1 to {MAX_PARTS}")
    return number


Body = AsyncIterator[bytes]


class BlobBackend(Protocol):
    """Where a bucket's objects live. Keys and metadata arrive checked; bodies stream.

    Every call may be made from any process at any time: backends keep no state that
    another process's writes could make stale.
    """

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
        """Store ``body`` under ``key``, replacing any object; ``None`` (nothing written) when
        ``only_if`` does not hold. Nothing is visible until the whole body is stored; a body
        that raises, or grows past ``max_bytes`` (:class:`LimitExceeded`), leaves nothing."""
        ...

    async def get(
        self, key: str, *, range: Range | None, only_if: Conditions | None
    ) -> tuple[BlobMeta, Body | None, tuple[int, int] | None] | None:
        """The object's metadata, its body (``None`` when ``only_if`` fails) and the
        ``(offset, length)`` served; ``None`` when there is no object."""
        ...

    async def head(self, key: str) -> BlobMeta | None: ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete the objects (missing keys are fine)."""
        ...

    async def list(
        self,
        *,
        prefix: str,
        delimiter: str | None,
        cursor: str | None,
        start_after: str | None,
        limit: int,
        include_metadata: bool,
    ) -> ListPage: ...

    async def create_multipart(
        self, key: str, *, http_metadata: dict[str, str], custom_metadata: dict[str, str]
    ) -> str:
        """A new upload id for ``key``."""
        ...

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, body: Body, *, max_bytes: int
    ) -> Part: ...

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[Part]) -> BlobMeta:
        """Join the parts, in order, into the object; the upload then ends."""
        ...

    async def abort_multipart(self, key: str, upload_id: str) -> None: ...

    async def aclose(self) -> None: ...


def now() -> datetime:
    """The time to the millisecond, as a filesystem bucket's index keeps it, so the metadata
    a put answers with equals what ``head``, ``get`` and ``list`` read back."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def receive_body(body: Body, file: IO[bytes], max_bytes: int) -> tuple[str, int]:
    """Copy ``body`` into ``file``: ``(md5 hex, size)``. Past ``max_bytes``, LimitExceeded
    (``blob_put_bytes``) before the extra bytes are written; the caller drops the file."""
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > max_bytes:
            raise LimitExceeded("blob_put_bytes", f"the body is over {max_bytes} bytes; not stored")
        md5.update(chunk)
        file.write(chunk)
    return md5.hexdigest(), size
