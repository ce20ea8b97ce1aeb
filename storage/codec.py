"""The msgpack codec for storage values, RPC arguments and results.

Plain msgpack covers str, bytes, bool, None, float, list and dict; two extension types add
what Python users expect to round-trip exactly:

* ``EXT_BIGINT``: an int outside the 64-bit range, as signed big-endian bytes;
* ``EXT_DATETIME``: a datetime, as its ISO 8601 text (naive stays naive, aware keeps its offset).

Tuples come back as lists (a tuple used as a dict key comes back as a tuple, since a list
cannot be a key). Anything else (sets, custom classes, ...) is refused with
:class:`EncodeError`, which says the type and where in the value it sits.
"""

from __future__ import annotations

import datetime as _dt
import threading
from typing import Any

import msgpack

EXT_BIGINT = 1
EXT_DATETIME = 2

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1
_MAX_DEPTH = 256
ENCODABLE = "str, bytes, int, float, bool, None, list, tuple, dict, datetime"


class EncodeError(TypeError):
    """A value cannot be encoded; the message names its type and position."""


class DecodeError(ValueError):
    """Bytes are not a value this codec wrote."""


def _default(obj: object) -> msgpack.ExtType:
    if isinstance(obj, int) and not isinstance(obj, bool):
        length = (obj.bit_length() + 8) // 8
        return msgpack.ExtType(EXT_BIGINT, obj.to_bytes(length, "big", signed=True))
    if isinstance(obj, _dt.datetime):
        return msgpack.ExtType(EXT_DATETIME, obj.isoformat().encode())
    raise EncodeError(f"cannot encode a value of type {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> object:
    if code == EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    if code == EXT_DATETIME:
        return _dt.datetime.fromisoformat(data.decode())
    raise DecodeError(f"unknown msgpack extension type {code}")


class _Packers(threading.local):
    """One packer per thread, made once: ``msgpack.packb`` builds a new one per call, which
    costs more than packing a small value (an RPC's arguments, a point read's row). A packer
    resets itself when packing fails, so one failure leaves nothing behind for the next."""

    def __init__(self) -> None:
        self.pack = msgpack.Packer(default=_default, use_bin_type=True).pack


_packers = _Packers()


def encode(value: Any) -> bytes:
    """Encode ``value``; raise :class:`EncodeError` naming the first unencodable part."""
    try:
        data: bytes = _packers.pack(value)
        return data
    except EncodeError:
        raise EncodeError(_describe_unencodable(value)) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"{_describe_unencodable(value)} ({exc})") from None


def decode(data: bytes) -> Any:
    """Decode bytes written by :func:`encode`."""
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack raises many unrelated types on bad input
        error = exc
    try:
        # A map key packed from a tuple unpacks as a list, which cannot be a dict key: decode
        # again (rare, so only on failure) turning such keys back into tuples.
        return msgpack.unpackb(
            data,
            ext_hook=_ext_hook,
            raw=False,
            strict_map_key=False,
            object_pairs_hook=_dict_with_tuple_keys,
        )
    except DecodeError:
        raise
    except Exception:  # noqa: BLE001 - as above
        raise DecodeError(f"not a raydo-encoded value: {error}") from None


def _dict_with_tuple_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    return {_as_tuple(key): value for key, value in pairs}


def _as_tuple(key: Any) -> Any:
    return tuple(_as_tuple(k) for k in key) if isinstance(key, list) else key


def packer() -> msgpack.Packer:
    """A reusable packer with the codec's extension types (for stream framing)."""
    return msgpack.Packer(default=_default, use_bin_type=True)


def unpacker(max_buffer_size: int) -> msgpack.Unpacker:
    """A streaming unpacker with the codec's extension types, bounded to ``max_buffer_size``."""
    return msgpack.Unpacker(
        ext_hook=_ext_hook, raw=False, strict_map_key=False, max_buffer_size=max_buffer_size
    )


def _describe_unencodable(value: object) -> str:
    """Find the first part of ``value`` the codec refuses and say where it is."""
    path = _find_unencodable(value, "value", 0)
    if path is None:
        return "value cannot be encoded"
    where, bad = path
    if isinstance(bad, str):
        return f"{where} is a str that is not valid Unicode (it holds a lone surrogate)"
    return f"{where} has type {type(bad).__name__}, which cannot be encoded (allowed: {ENCODABLE})"


def _find_unencodable(value: object, where: str, depth: int) -> tuple[str, object] | None:
    if depth > _MAX_DEPTH:
        return (f"{where} (nested over {_MAX_DEPTH} levels)", value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return (where, value)
        return None
    if value is None or isinstance(value, (bytes, bool, int, float, _dt.datetime)):
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _find_unencodable(item, f"{where}[{i}]", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_unencodable(key, f"{where} key {key!r:.40}", depth + 1)
            if found:
                return found
            found = _find_unencodable(item, f"{where}[{key!r:.40}]", depth + 1)
            if found:
                return found
        return None
    return (where, value)
