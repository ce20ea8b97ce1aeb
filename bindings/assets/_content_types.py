"""The ``Content-Type`` an asset is served with, from its name (as wrangler decides it: the
type of its extension, ``; charset=utf-8`` added to text types, else
``application/octet-stream``)."""

from __future__ import annotations

import mimetypes

_TYPES = mimetypes.MimeTypes()
#: Where Python's table differs from the one wrangler uses (or the system's may be missing).
#: Checked against workers-shared's getContentType, which asks the npm package mime 3
#: (".js" -> application/javascript) and adds "; charset=utf-8" to text types.
_OVERRIDES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "application/javascript",
    ".mjs": "application/javascript",
    ".cjs": "application/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
}
DEFAULT = "application/octet-stream"


def content_type(name: str) -> str:
    dot = name.rfind(".")
    extension = name[dot:].lower() if dot > name.rfind("/") else ""
    found = _OVERRIDES.get(extension) or (
        _TYPES.guess_type("f" + extension)[0] if extension else None
    )
    if found is None:
        return DEFAULT
    return f"{found}; charset=utf-8" if found.startswith("text/") else found
