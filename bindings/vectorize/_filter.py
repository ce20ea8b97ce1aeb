"""Metadata filters, Cloudflare's shape: ``{"genre": "drama", "year": {"$gte": 2000}}``.

A filter is a dict of conditions, all of which must hold (implicit AND). A key names a
metadata property (dots for nesting: ``"author.name"``); its value is an operator dict or a
bare value, meaning ``$eq``. Operators: ``$eq $ne $lt $lte $gt $gte`` take a string, number or
boolean (``$eq``/``$ne`` also ``None``), ``$in $nin`` a non-empty list of them.

Conditions are evaluated against a property's *metadata index* only: a vector matches a
condition through the value the index holds for it, of the index's type (strings on their
first 64 bytes). A vector without one (the property missing or of another type, or written
before the index existed) matches only ``$ne``, ``$nin`` and ``$eq: None``. Values of
different types never compare (``True`` is not ``1``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from raydo.storage import LimitExceeded

from ._types import VectorizeError, VectorLimits

OPERATORS = ("$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin")
_NEGATIVE = ("$ne", "$nin")
MAX_KEY_CHARS = 512
#: Strings are indexed, and compared, on their first this many bytes.
STRING_PREFIX_BYTES = 64

Scalar = str | float | bool | None


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    op: str
    operand: Any  # a Scalar, or a tuple of them for $in / $nin


def truncate(text: str) -> str:
    """``text`` cut to its first 64 bytes of UTF-8, on a character boundary."""
    raw = text.encode("utf-8")
    if len(raw) <= STRING_PREFIX_BYTES:
        return text
    return raw[:STRING_PREFIX_BYTES].decode("utf-8", errors="ignore")


def _scalar(value: object, where: str, allow_none: bool) -> Scalar:
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise VectorizeError(f"filter {where}: a number must be finite")
        return number
    if isinstance(value, str):
        return truncate(value)
    raise VectorizeError(f"filter {where}: expected a string, number or boolean, got {value!r:.60}")


def parse_filter(filter: object, limits: VectorLimits) -> list[Condition]:
    """The conditions of ``filter`` (``None`` or ``{}``: none); :class:`VectorizeError` for a
    malformed one, ``LimitExceeded`` (``max_filter_bytes``) for one too long."""
    if filter is None:
        return []
    if not isinstance(filter, Mapping):
        raise VectorizeError(f"a filter must be a dict, got {type(filter).__name__}")
    try:
        size = len(json.dumps(filter, allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError):
        raise VectorizeError("a filter must be JSON (str keys, finite numbers)") from None
    if size >= limits.max_filter_bytes:
        raise LimitExceeded(
            "max_filter_bytes",
            f"the filter is {size} bytes of JSON; it must be under {limits.max_filter_bytes}"
            " (max_filter_bytes)",
        )
    conditions: list[Condition] = []
    for key, spec in filter.items():
        if not isinstance(key, str) or not key:
            raise VectorizeError("filter keys must be non-empty strings")
        if key.startswith("$"):
            raise VectorizeError(
                f"filter key {key!r}: operators go inside a property"
                f" ({{'field': {{{key!r}: ...}}}}); conditions are ANDed,"
                " $and/$or are not supported"
            )
        if len(key) > MAX_KEY_CHARS or '"' in key or any(not part for part in key.split(".")):
            raise VectorizeError(
                f"filter key {key[:80]!r}: at most {MAX_KEY_CHARS} characters, no '\"', no empty"
                " part between dots"
            )
        if not isinstance(spec, Mapping):
            conditions.append(Condition(key, "$eq", _scalar(spec, key, allow_none=True)))
            continue
        if not spec:
            raise VectorizeError(f"filter {key}: an empty operator dict")
        for op, operand in spec.items():
            where = f"{key}.{op}"
            if op not in OPERATORS:
                raise VectorizeError(
                    f"filter {key}: unknown operator {op!r}; known: {', '.join(OPERATORS)}"
                )
            if op in ("$in", "$nin"):
                if not isinstance(operand, list) or not operand:
                    raise VectorizeError(f"filter {where}: expected a non-empty list")
                items = tuple(_scalar(v, where, allow_none=False) for v in operand)
                conditions.append(Condition(key, op, items))
            else:
                allow_none = op in ("$eq", "$ne")
                conditions.append(Condition(key, op, _scalar(operand, where, allow_none)))
    return conditions


_NONE, _NUMBER, _STRING, _BOOLEAN = 0, 1, 2, 3


def _code(value: Scalar) -> int:
    if isinstance(value, bool):
        return _BOOLEAN
    if isinstance(value, int | float):
        return _NUMBER
    return _STRING


class Column:
    """The values one metadata index holds, by row, as arrays: a kind per row (none,
    number, string, boolean), numbers (booleans as 0 and 1) and strings, so that a condition
    is a few array comparisons over every row rather than a Python loop."""

    __slots__ = ("kind", "number", "text")

    def __init__(self) -> None:
        self.kind = np.zeros(0, dtype=np.int8)
        self.number = np.zeros(0, dtype=np.float64)
        self.text = np.empty(0, dtype=object)

    def _grow(self, need: int) -> None:
        size = len(self.kind)
        if need <= size:
            return
        new = max(need, size * 2, 1024)
        self.kind = np.concatenate([self.kind, np.zeros(new - size, dtype=np.int8)])
        self.number = np.concatenate([self.number, np.zeros(new - size, dtype=np.float64)])
        self.text = np.concatenate([self.text, np.empty(new - size, dtype=object)])

    def __setitem__(self, row: int, value: Scalar) -> None:
        if value is None:
            self.pop(row)
            return
        self._grow(row + 1)
        code = _code(value)
        self.kind[row] = code
        self.number[row] = float(value) if code != _STRING else 0.0
        self.text[row] = value if code == _STRING else None

    def pop(self, row: int | None, default: object = None) -> None:
        if row is not None and row < len(self.kind):
            self.kind[row] = _NONE
            self.text[row] = None

    def __contains__(self, row: int) -> bool:
        return row < len(self.kind) and bool(self.kind[row] != _NONE)

    def __getitem__(self, row: int) -> Scalar:
        code = int(self.kind[row]) if row < len(self.kind) else _NONE
        if code == _NONE:
            raise KeyError(row)
        if code == _STRING:
            text: str = self.text[row]
            return text
        if code == _BOOLEAN:
            return bool(self.number[row])
        return float(self.number[row])

    def has(self, size: int) -> Any:
        """The rows (of the first ``size``) holding a value."""
        out = np.zeros(size, dtype=bool)
        n = min(size, len(self.kind))
        out[:n] = self.kind[:n] != _NONE
        return out

    def holds(self, op: str, operand: Any, size: int) -> Any:
        """The rows whose value satisfies ``op operand``, of the positive operators."""
        out = np.zeros(size, dtype=bool)
        if op == "$in":
            for one in operand:
                out |= self.holds("$eq", one, size)
            return out
        n = min(size, len(self.kind))
        if operand is None or n == 0:
            return out
        code = _code(operand)
        same = self.kind[:n] == code
        if code == _BOOLEAN and op != "$eq":  # booleans only compare for equality
            return out
        if code == _STRING:
            rows = np.flatnonzero(same)
            values = self.text[rows]
            compare = {
                "$eq": np.equal,
                "$lt": np.less,
                "$lte": np.less_equal,
                "$gt": np.greater,
                "$gte": np.greater_equal,
            }[op]
            out[rows[np.asarray(compare(values, operand), dtype=bool)]] = True
            return out
        number = float(operand)
        column = self.number[:n]
        if op == "$eq":
            out[:n] = same & (column == number)
        elif op == "$lt":
            out[:n] = same & (column < number)
        elif op == "$lte":
            out[:n] = same & (column <= number)
        elif op == "$gt":
            out[:n] = same & (column > number)
        else:
            out[:n] = same & (column >= number)
        return out


def mask_for(conditions: list[Condition], indexed: Mapping[str, Column], valid: Any) -> Any:
    """A boolean mask of the rows matching every condition (``valid``: the live rows).
    :class:`VectorizeError` names a property without a metadata index."""
    mask = valid.copy()
    size = len(mask)
    for c in conditions:
        values = indexed.get(c.key)
        if values is None:
            raise VectorizeError(
                f"filter on {c.key!r}, which has no metadata index; create one with"
                f" `raydo vectorize create-metadata-index INDEX --property-name {c.key}"
                " --type string|number|boolean`"
            )
        if c.op == "$eq" and c.operand is None:
            mask &= ~values.has(size)
            continue
        if c.op == "$ne" and c.operand is None:
            mask &= values.has(size)
            continue
        positive = "$eq" if c.op == "$ne" else "$in" if c.op == "$nin" else c.op
        hits = values.holds(positive, c.operand, size)
        mask &= ~hits if c.op in _NEGATIVE else hits
    return mask


def indexed_value(metadata: Mapping[str, Any], key: str, index_type: str) -> Scalar:
    """The value the metadata index on ``key`` holds for ``metadata``; None for none."""
    value: Any = metadata
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if index_type == "boolean":
        return value if isinstance(value, bool) else None
    if index_type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)
    return truncate(value) if isinstance(value, str) else None
