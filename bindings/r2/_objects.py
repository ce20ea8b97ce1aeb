"""What a bucket answers with: an object's metadata (:class:`R2Object`), with its body
(:class:`R2ObjectBody`), and a page of a listing (:class:`R2Objects`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, MutableMapping
from datetime import datetime
from typing import Any

from raydo.storage.blobs import BlobMeta, Body

_HEADERS = {
    "content_type": "content-type",
    "content_language": "content-language",
    "content_disposition": "content-disposition",
    "content_encoding": "content-encoding",
    "cache_control": "cache-control",
    "cache_expiry": "expires",
}


class R2Object:
    """An object's metadata: ``key``, ``version``, ``size``, ``etag`` (bare), ``http_etag``
    (quoted), ``uploaded`` (aware datetime, UTC), ``http_metadata``, ``custom_metadata`` and
    ``range`` (``{"offset", "length"}`` served by a ranged get, else None)."""

    def __init__(self, meta: BlobMeta, served: tuple[int, int] | None = None) -> None:
        self.key = meta.key
        self.version = meta.version
        self.size = meta.size
        self.etag = meta.etag
        self.http_etag = f'"{meta.etag}"'
        self.uploaded: datetime = meta.uploaded
        self.http_metadata = dict(meta.http_metadata)
        self.custom_metadata = dict(meta.custom_metadata)
        self.storage_class = "Standard"
        self.range = None if served is None else {"offset": served[0], "length": served[1]}

    def write_http_metadata(self, headers: MutableMapping[str, str]) -> None:
        """Set the object's HTTP metadata as response headers (``content-type``...)."""
        for name, value in self.http_metadata.items():
            headers[_HEADERS[name]] = value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key!r} size={self.size} etag={self.etag}>"


class R2ObjectBody(R2Object):
    """An object with its body: ``async for chunk in obj.body``, or ``await obj.read()`` /
    ``text()`` / ``json()`` for all of it. A body is read once; ``aclose()`` lets it go
    unread (it also closes when garbage collected)."""

    def __init__(self, meta: BlobMeta, body: Body, served: tuple[int, int] | None) -> None:
        super().__init__(meta, served)
        self._body = body
        self.body_used = False

    @property
    def body(self) -> AsyncIterator[bytes]:
        if self.body_used:
            raise RuntimeError(f"the body of {self.key!r} was already read")
        self.body_used = True
        return self._body

    async def read(self) -> bytes:
        """The whole body (in memory: mind its size)."""
        body = self.body
        read_all = getattr(body, "read_all", None)
        if read_all is not None:  # one read instead of chunks joined
            whole: bytes = await read_all()
            return whole
        return b"".join([chunk async for chunk in body])

    async def text(self) -> str:
        return (await self.read()).decode()

    async def json(self) -> Any:
        return json.loads(await self.read())

    async def aclose(self) -> None:
        aclose = getattr(self._body, "aclose", None)
        if aclose is not None:
            await aclose()


class R2Objects:
    """A page of :meth:`R2Bucket.list`: ``objects``, ``delimited_prefixes``, ``truncated``
    and the ``cursor`` to pass back for the next page (None on the last)."""

    def __init__(
        self,
        objects: list[R2Object],
        delimited_prefixes: list[str],
        truncated: bool,
        cursor: str | None,
    ) -> None:
        self.objects = objects
        self.delimited_prefixes = delimited_prefixes
        self.truncated = truncated
        self.cursor = cursor
