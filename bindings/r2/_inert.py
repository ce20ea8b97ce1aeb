"""What a presigned GET may tell a browser about a body: it never runs as the app.

Whoever holds a presigned PUT URL chooses the body and the ``Content-Type`` and
``Content-Disposition`` it is stored with; the GET URL serves it from the app's own origin.
So every response of a presigned route carries :data:`INERT_HEADERS` (no MIME sniffing, and a
Content-Security-Policy that sandboxes the document and lets it load nothing), and the body is
served, in order of precedence:

1. with the content type the signer fixed when signing the URL (``content_type=`` of
   ``create_presigned_url``), inline: the app chose it, so it is the app's to answer for;
2. otherwise as an attachment (``Content-Disposition: attachment``, keeping a stored file
   name), with the stored content type only when it is one of :data:`PASSIVE_TYPES` (types a
   browser displays but never runs, nor applies as a script or style of another page), else
   ``application/octet-stream``.
"""

from __future__ import annotations

import re
from email.message import Message
from urllib.parse import quote

INERT_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox; default-src 'none'",
}
"""On every response of the presigned routes, errors included."""

OPAQUE_TYPE = "application/octet-stream"

PASSIVE_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/pdf",
        "application/zip",
        "application/gzip",
        "application/json",
        "text/plain",
        "text/csv",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/webm",
        "video/mp4",
        "video/ogg",
        "video/webm",
    }
)
"""Stored content types served as they are (an allow-list: HTML, SVG, XML, JavaScript and
CSS, and whatever a browser may learn to run next, are served as opaque bytes)."""

MAX_SIGNED_TYPE_CHARS = 256

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\"))*"
)
_CHARSET = re.compile(r"[A-Za-z0-9._-]{1,40}")
_FILE_NAME_CHARS = 255


class BadContentType(ValueError):
    """A content type to sign that is not one HTTP media type."""


def check_signed_type(content_type: str) -> str:
    """``content_type`` if it is one media type (``type/subtype`` with parameters) of at
    most :data:`MAX_SIGNED_TYPE_CHARS`; :class:`BadContentType` otherwise."""
    if (
        not isinstance(content_type, str)
        or len(content_type) > MAX_SIGNED_TYPE_CHARS
        or not _MEDIA_TYPE.fullmatch(content_type)
    ):
        raise BadContentType(
            f"content_type must be one media type such as 'image/png', at most"
            f" {MAX_SIGNED_TYPE_CHARS} characters"
        )
    return content_type


def served_headers(http_metadata: dict[str, str], signed_type: str | None) -> dict[str, str]:
    """The ``content-type`` and ``content-disposition`` a presigned GET or HEAD serves for an
    object stored with ``http_metadata`` (see the module's docstring for the rules)."""
    if signed_type is not None:
        return {"content-type": signed_type, "content-disposition": "inline"}
    stored = http_metadata.get("content_type", "")
    disposition = "attachment"
    name = _file_name(http_metadata.get("content_disposition"))
    if name:
        disposition += f"; filename*=UTF-8''{quote(name, safe='')}"
    return {"content-type": _passive(stored), "content-disposition": disposition}


def _passive(stored: str) -> str:
    """The stored type reduced to its essence (and a plain charset) if it is passive."""
    essence = stored.split(";", 1)[0].strip().lower()
    if essence not in PASSIVE_TYPES:
        return OPAQUE_TYPE
    message = Message()
    message["content-type"] = stored
    charset = message.get_param("charset")
    if isinstance(charset, str) and _CHARSET.fullmatch(charset):
        return f"{essence}; charset={charset}"
    return essence


def _file_name(disposition: str | None) -> str | None:
    """The last path segment of the file name a stored Content-Disposition gives, without
    control characters; None when it gives none."""
    if not disposition:
        return None
    message = Message()
    message["content-disposition"] = disposition
    name = message.get_filename()
    if not isinstance(name, str):
        return None
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if c.isprintable())[:_FILE_NAME_CHARS]
    return name if name not in ("", ".", "..") else None
