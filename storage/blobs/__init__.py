"""Blob storage: buckets of objects (bodies with metadata) under string keys.

:class:`BlobBackend` is the small Protocol a bucket's storage implements;
:class:`FilesystemBackend` (the default: a folder with an SQLite index) and
:class:`S3Backend` (any S3-compatible service) implement it. ``bindings.r2`` builds the
``env`` binding on top.
"""

from ._filesystem import FilesystemBackend
from ._s3 import S3Backend
from ._types import (
    HTTP_FIELDS,
    MAX_BATCH,
    MAX_PARTS,
    MIN_PART_BYTES,
    BlobBackend,
    BlobError,
    BlobMeta,
    Body,
    Conditions,
    InvalidArgument,
    InvalidKey,
    InvalidPart,
    InvalidRange,
    ListPage,
    NoSuchUpload,
    Part,
    Range,
    check_key,
    check_metadata,
    check_part_number,
    format_http_date,
)

__all__ = [
    "HTTP_FIELDS",
    "MAX_BATCH",
    "MAX_PARTS",
    "MIN_PART_BYTES",
    "BlobBackend",
    "BlobError",
    "BlobMeta",
    "Body",
    "Conditions",
    "FilesystemBackend",
    "InvalidArgument",
    "InvalidKey",
    "InvalidPart",
    "InvalidRange",
    "ListPage",
    "NoSuchUpload",
    "Part",
    "Range",
    "S3Backend",
    "check_key",
    "check_metadata",
    "check_part_number",
    "format_http_date",
]
