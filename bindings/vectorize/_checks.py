"""Checking what a caller gives a vector index, before anything is sent or written.

Every check raises :class:`VectorizeError` (malformed input) or ``LimitExceeded`` (a limit of
:class:`VectorLimits`, named), so a call that fails wrote nothing. The shard objects check the
wire form again (:func:`check_wire_batch`): any object of the app could call them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from raydo.storage import LimitExceeded

from ._types import Vector, VectorizeError, VectorLimits


@dataclass(frozen=True, slots=True)
class WireBatch:
    """Vectors as they travel to a shard: ids, namespaces ("" for none), the values as one
    float32 matrix (row-major bytes), the metadata as JSON text ("" for none)."""

    ids: list[str]
    namespaces: list[str]
    values: bytes
    metadata: list[str]


def _limit(limit: str, size: int, allowed: int, what: str) -> None:
    if size > allowed:
        raise LimitExceeded(limit, f"{what} is {size}; at most {allowed} allowed ({limit})")


def check_id(value: object, limits: VectorLimits, what: str = "a vector id") -> str:
    if not isinstance(value, str):
        raise VectorizeError(f"{what} must be a str, got {type(value).__name__}")
    if not value:
        raise VectorizeError(f"{what} is empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise VectorizeError(f"{what} is not valid Unicode (a lone surrogate)") from None
    _limit("max_id_bytes", size, limits.max_id_bytes, f"{what} {value[:80]!r} in bytes")
    return value


def check_namespace(value: object, limits: VectorLimits) -> str:
    """The namespace as sent ("" for none)."""
    if value is None:
        return ""
    if not isinstance(value, str) or not value:
        raise VectorizeError(f"a namespace must be a non-empty str or None, got {value!r:.80}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise VectorizeError("a namespace is not valid Unicode (a lone surrogate)") from None
    _limit("max_namespace_bytes", size, limits.max_namespace_bytes, "a namespace in bytes")
    return value


def check_values(values: object, dimensions: int, what: str) -> np.ndarray[Any, Any]:
    """``values`` as float32, after checking they are ``dimensions`` finite numbers."""
    if isinstance(values, (str, bytes, Mapping)):
        raise VectorizeError(
            f"{what}: values must be a list of numbers, got {type(values).__name__}"
        )
    if isinstance(values, np.ndarray):
        array = values
        if array.dtype.kind not in "fiu":
            raise VectorizeError(f"{what}: values must be numbers, got an array of {array.dtype}")
    else:
        if not isinstance(values, Sequence):
            raise VectorizeError(
                f"{what}: values must be a list of numbers, got {type(values).__name__}"
            )
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise VectorizeError(f"{what}: values must be numbers, got {v!r:.40}")
        array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.shape[0] != dimensions:
        got = array.shape[0] if array.ndim == 1 else f"shape {array.shape}"
        raise VectorizeError(f"{what} has {got} dimensions; the index has {dimensions}")
    if not np.isfinite(array).all():
        raise VectorizeError(f"{what} has a NaN or infinite value")
    if array.dtype != np.float32 and array.size and float(np.abs(array).max()) > _FLOAT32_MAX:
        raise VectorizeError(f"{what} has a value too large for float32")
    return array.astype(np.float32)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_metadata(value: object, limits: VectorLimits, what: str) -> str:
    """Metadata as JSON text ("" for none)."""
    if value is None:
        return ""
    if not isinstance(value, Mapping):
        raise VectorizeError(f"{what}: metadata must be a dict, got {type(value).__name__}")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise VectorizeError(
            f"{what}: metadata must be JSON (str keys, finite numbers): {exc}"
        ) from None
    _limit("max_metadata_bytes", size, limits.max_metadata_bytes, f"{what}: metadata in bytes")
    return text


def _fields(item: object, i: int) -> tuple[object, object, object, object]:
    if isinstance(item, Vector):
        return item.id, item.values, item.namespace, item.metadata
    if isinstance(item, Mapping):
        unknown = set(item) - {"id", "values", "namespace", "metadata"}
        if unknown:
            raise VectorizeError(f"vector {i} has unknown keys: {sorted(map(str, unknown))}")
        if "id" not in item or "values" not in item:
            raise VectorizeError(f"vector {i} needs 'id' and 'values'")
        return item["id"], item["values"], item.get("namespace"), item.get("metadata")
    raise VectorizeError(f"vector {i} is a {type(item).__name__}, not a dict or Vector")


def check_batch(vectors: object, dimensions: int, limits: VectorLimits) -> WireBatch:
    """Every vector of an ``insert`` or ``upsert`` checked, in wire form."""
    if isinstance(vectors, (str, bytes, Mapping, Vector)) or not isinstance(vectors, Sequence):
        raise VectorizeError("insert() and upsert() take a list of vectors")
    if not vectors:
        raise VectorizeError("insert() and upsert() need at least one vector")
    _limit("max_batch", len(vectors), limits.max_batch, "the number of vectors in one call")
    ids: list[str] = []
    namespaces: list[str] = []
    metadata: list[str] = []
    matrix = np.empty((len(vectors), dimensions), dtype=np.float32)
    seen: set[str] = set()
    for i, item in enumerate(vectors):
        id_, values, namespace, meta = _fields(item, i)
        what = f"vector {i}"
        id_ = check_id(id_, limits, f"the id of vector {i}")
        if id_ in seen:
            raise VectorizeError(f"vector {i}: id {id_!r} appears more than once in the call")
        seen.add(id_)
        ids.append(id_)
        matrix[i] = check_values(values, dimensions, f"{what} ({id_!r})")
        namespaces.append(check_namespace(namespace, limits))
        metadata.append(check_metadata(meta, limits, f"{what} ({id_!r})"))
    return WireBatch(ids, namespaces, matrix.tobytes(), metadata)


def check_ids(ids: object, limits: VectorLimits, call: str) -> list[str]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise VectorizeError(f"{call}() takes a list of ids")
    _limit("max_batch", len(ids), limits.max_batch, f"the number of ids in one {call}()")
    checked = [check_id(v, limits, f"id {i}") for i, v in enumerate(ids)]
    if len(set(checked)) != len(checked):
        raise VectorizeError(f"{call}(): an id appears more than once")
    return checked


def check_top_k(top_k: object, want_everything: bool, limits: VectorLimits) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise VectorizeError(f"top_k must be an integer of at least 1, got {top_k!r:.40}")
    if want_everything:
        _limit(
            "max_top_k_with_values",
            top_k,
            limits.max_top_k_with_values,
            'top_k with return_values=True or return_metadata="all"',
        )
    _limit("max_top_k", top_k, limits.max_top_k, "top_k")
    return top_k


def check_wire_batch(batch: WireBatch, dimensions: int) -> np.ndarray[Any, Any]:
    """The shard's own check of a batch: lengths agree and the values are finite float32."""
    n = len(batch.ids)
    if not (len(batch.namespaces) == len(batch.metadata) == n) or n == 0:
        raise VectorizeError("a malformed batch: ids, namespaces and metadata differ in length")
    if len(batch.values) != n * dimensions * 4:
        raise VectorizeError(f"a malformed batch: values are not {n} x {dimensions} float32")
    matrix = np.frombuffer(batch.values, dtype=np.float32).reshape(n, dimensions)
    if not np.all(np.isfinite(matrix)):
        raise VectorizeError("a vector has a NaN or infinite value")
    for id_ in batch.ids:
        if not isinstance(id_, str) or not id_:
            raise VectorizeError("a malformed batch: an id is empty or not a str")
    if len(set(batch.ids)) != n:
        raise VectorizeError("a malformed batch: an id appears more than once")
    return matrix


def is_finite_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
