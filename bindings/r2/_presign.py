"""Presigned URLs of a bucket: signing, checking, and the secret both rest on.

A URL is ``/_raydo/r2/<BINDING>?key=<key>&expires=<unix s>&signature=<hex>``. The signature is
HMAC-SHA256 over the method, the bucket's name, the expiry and the key, keyed by the
bucket's secret, so a URL is good for one method on one key until it expires. The key
travels in the query, percent-encoded: a path would let clients fold ``..`` segments away.
A URL signed with a content type (``&content-type=``) is signed over it too, in a message of
its own shape (``raydo-r2-v2``), so no key can be made to read as a key plus a type.

The secret comes from the environment variable named by ``presign_secret_env``; without one,
the first process to need it writes 32 random bytes to ``presign.key`` in the bucket's folder
(mode 0600, published atomically with ``link``), and every other process reads that, so URLs
survive restarts and are accepted by every gateway process sharing the folder.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from raydo.storage.owner_only import make_folders

PRESIGN_PREFIX = "/_raydo/r2/"
MAX_EXPIRES_IN = 7 * 24 * 3600
METHODS = ("GET", "HEAD", "PUT", "DELETE")
_MIN_SECRET_CHARS = 16


class PresignError(RuntimeError):
    """The bucket cannot sign: its secret is missing or unusable."""


class Refused(Exception):
    """A presigned request that must be refused with 403; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Signer:
    """Signs and checks one bucket's URLs. Reads (or makes) its secret on first use."""

    def __init__(
        self, binding: str, bucket_name: str, *, secret_env: str | None, secret_file: Path
    ) -> None:
        self.binding = binding
        self.bucket_name = bucket_name
        self._secret_env = secret_env
        self._secret_file = secret_file
        self._key: bytes | None = None

    def _secret(self) -> bytes:
        if self._key is None:
            self._key = self._from_env() if self._secret_env else self._from_file()
        return self._key

    def _from_env(self) -> bytes:
        assert self._secret_env is not None
        value = os.environ.get(self._secret_env)
        if value is None:
            raise PresignError(
                f"r2 bucket {self.binding}: presign_secret_env names {self._secret_env!r},"
                " which is not set in this process's environment"
            )
        if len(value) < _MIN_SECRET_CHARS:
            raise PresignError(
                f"r2 bucket {self.binding}: the secret in {self._secret_env} is shorter than"
                f" {_MIN_SECRET_CHARS} characters"
            )
        return value.encode()

    def _from_file(self) -> bytes:
        path = self._secret_file
        try:
            return _read_secret(path)
        except FileNotFoundError:
            pass
        make_folders(path.parent)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(draft, path)  # fails if another process published first: use theirs
        except FileExistsError:
            pass
        finally:
            draft.unlink(missing_ok=True)
        return _read_secret(path)

    def signature(
        self, method: str, key: str, expires: int, content_type: str | None = None
    ) -> str:
        if content_type is None:
            message = f"raydo-r2-v1\n{method}\n{self.bucket_name}\n{expires}\n{key}"
        else:  # the type holds no newline (a media type), so it cannot end early
            message = f"raydo-r2-v2\n{method}\n{self.bucket_name}\n{expires}\n{content_type}\n{key}"
        return hmac.new(self._secret(), message.encode(), hashlib.sha256).hexdigest()

    def url(
        self,
        method: str,
        key: str,
        expires_in: int,
        base_url: str = "",
        content_type: str | None = None,
    ) -> str:
        expires = int(time.time()) + expires_in
        signature = self.signature(method, key, expires, content_type)
        fixed = "" if content_type is None else f"&content-type={quote(content_type, safe='')}"
        return (
            f"{base_url.rstrip('/')}{PRESIGN_PREFIX}{self.binding}"
            f"?key={quote(key, safe='')}&expires={expires}{fixed}&signature={signature}"
        )

    def verify(
        self,
        method: str,
        key: str | None,
        expires: str | None,
        signature: str | None,
        content_type: str | None = None,
    ) -> str:
        """The key of a valid request; :class:`Refused` for a missing, malformed, expired or
        tampered one (a URL signed for another method, or with another content type or none,
        is a tampered one)."""
        if key is None or expires is None or signature is None:
            raise Refused("missing_signature", "key, expires and signature are required")
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            raise Refused("signature_mismatch", "malformed expires")
        if content_type is not None and (len(content_type) > 1024 or "\n" in content_type):
            raise Refused("signature_mismatch", "malformed content-type")
        wanted = self.signature(method, key, int(expires), content_type)
        if not hmac.compare_digest(wanted.encode(), signature.encode("utf-8", "replace")):
            raise Refused("signature_mismatch", "the signature does not match this request")
        # Checked after the signature, so an attacker learns nothing about expiry without one.
        if int(expires) < time.time():
            raise Refused("expired", "this presigned URL has expired")
        return key


def _read_secret(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < _MIN_SECRET_CHARS:
        raise PresignError(f"{path}: the presign secret is shorter than {_MIN_SECRET_CHARS}")
    return text.encode()
