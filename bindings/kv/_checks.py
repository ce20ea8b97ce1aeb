"""The checks a key-value namespace makes on its caller's arguments, before anything is sent.

Each takes what the caller gave and returns what travels to the object (keys and values as
bytes, metadata as JSON text, expirations as epoch seconds), or raises: ``TypeError`` for a
value of the wrong kind, ``ValueError`` for a malformed one, :class:`LimitExceeded` naming
the limit for one too big.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from raydo.storage.limits import LimitExceeded, Limits

#: 9999-12-31T23:59:59Z: later expirations are refused, they cannot be stored as alarms.
LATEST_EXPIRATION = 253_402_300_799
_BAD_CURSOR = "malformed cursor: pass back the cursor of a previous list()"


def key_bytes(key: object, limits: Limits) -> bytes:
    """A key as UTF-8: a ``str`` of 1 to ``kv_key_bytes`` bytes, other than "." and ".."."""
    if not isinstance(key, str):
        raise TypeError(f"a key must be a str, got {type(key).__name__}")
    data = utf8(key, "the key")
    if not data:
        raise ValueError("a key cannot be empty")
    if key in (".", ".."):
        raise ValueError(f"the key {key!r} is not allowed")
    limits.check("kv_key_bytes", len(data), f"the key {key[:60]!r}...")
    return data


def value_bytes(value: object) -> bytes:
    """A value as bytes: ``str`` as UTF-8, bytes-like as is."""
    if isinstance(value, str):
        return utf8(value, "the value")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(
        f"a value must be str or bytes, got {type(value).__name__} (json.dumps it to store JSON)"
    )


def seconds(value: object, what: str, min_ttl: float) -> float:
    """A duration (``cache_ttl``, ``expiration_ttl``): a finite number, at least ``min_ttl``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if value < min_ttl or math.isinf(value):
        raise ValueError(f"{what} must be at least {min_ttl:g} seconds (min_ttl), got {value!r}")
    return float(value)


def expiration_time(
    expiration: object, expiration_ttl: object, min_ttl: float, now: float
) -> float | None:
    """When a pair expires, in epoch seconds, from at most one of the two ways to say it."""
    if expiration is not None and expiration_ttl is not None:
        raise ValueError("give expiration or expiration_ttl, not both")
    if expiration_ttl is not None:
        ttl = seconds(expiration_ttl, "expiration_ttl", min_ttl)
        if ttl <= 0:
            raise ValueError("expiration_ttl must be more than 0 seconds")
        return now + ttl
    if expiration is None:
        return None
    if (
        isinstance(expiration, bool)
        or not isinstance(expiration, int | float)
        or not math.isfinite(expiration)
    ):
        raise TypeError(f"expiration must be seconds since the epoch, got {expiration!r}")
    if expiration > LATEST_EXPIRATION:
        raise ValueError(f"expiration {expiration!r} is after the year 9999")
    if expiration <= now or expiration - now < min_ttl:
        raise ValueError(
            f"expiration must be at least {min_ttl:g} seconds (min_ttl) in the future;"
            f" {expiration!r} is {expiration - now:.0f} s from now"
        )
    return float(expiration)


def metadata_json(metadata: Any, limits: Limits) -> str | None:
    """Metadata as compact JSON text of at most ``kv_metadata_bytes``; None stays None."""
    if metadata is None:
        return None
    try:
        text = json.dumps(metadata, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"metadata must be a JSON value: {exc}") from None
    if size > limits.kv_metadata_bytes:
        raise LimitExceeded(
            "kv_metadata_bytes",
            f"the metadata is {size} bytes of JSON; at most {limits.kv_metadata_bytes} are allowed",
        )
    return text


def encode_cursor(last_key: bytes) -> str:
    """The cursor that continues a listing after ``last_key``."""
    return base64.urlsafe_b64encode(last_key).decode().rstrip("=")


def decode_cursor(cursor: object, limits: Limits) -> bytes:
    """The key a cursor continues after; ``ValueError`` for anything :func:`encode_cursor`
    could not have made."""
    if not isinstance(cursor, str) or len(cursor) > 4 * limits.kv_key_bytes:
        raise ValueError(_BAD_CURSOR)
    try:
        after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after.decode("utf-8")
    except (binascii.Error, ValueError):
        raise ValueError(_BAD_CURSOR) from None
    if not after or len(after) > limits.kv_key_bytes or encode_cursor(after) != cursor:
        raise ValueError(_BAD_CURSOR)
    return after


def typed(value: bytes, type: str, key: str) -> Any:
    """A stored value as ``get`` returns it for ``type`` "text", "json" or "bytes"."""
    if type == "bytes":
        return value
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(
            f"the value of {key[:60]!r} is not UTF-8 text; read it with type='bytes'"
        ) from None
    return json.loads(text) if type == "json" else text


def utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode (it has a lone surrogate)") from None
