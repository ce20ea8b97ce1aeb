"""Object ids: 16 bytes naming the object, then 16 bytes of a MAC keyed by the namespace.

The shape is workerd's: ``id_from_name`` derives the first half with a keyed hash of the
name, so every process that knows the namespace key derives the same id; the second half
lets any id be checked as belonging to its namespace.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re

from raydo.storage.limits import LimitExceeded

_HEX64 = re.compile(r"[0-9a-f]{64}")
NAME_CACHE_SIZE = 4096
"""How many names' ids a namespace keeps, most recently used first."""


class ObjectId:
    """An object's identity in one namespace. ``str(id)`` is its 64 hex characters."""

    __slots__ = ("hex", "name", "namespace")

    def __init__(self, hex: str, namespace: str, name: str | None = None) -> None:
        self.hex = hex
        self.namespace = namespace
        self.name = name

    def __str__(self) -> str:
        return self.hex

    def __repr__(self) -> str:
        label = f" name={self.name!r}" if self.name is not None else ""
        return f"ObjectId({self.namespace}:{self.hex[:16]}…{label})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectId):
            return NotImplemented
        return self.hex == other.hex and self.namespace == other.namespace

    def __hash__(self) -> int:
        return hash((self.hex, self.namespace))

    def equals(self, other: ObjectId) -> bool:
        return self == other


class IdScheme:
    """Makes and checks the ids of one namespace."""

    def __init__(self, namespace: str, key: bytes, *, name_bytes: int) -> None:
        self.namespace = namespace
        self._key = key
        self._name_bytes = name_bytes
        # Two HMACs per name, on every request that routes by name: the busy names' ids are
        # kept (bounded; names are at most name_bytes each). Failures are never kept.
        self._hex_of_name = functools.lru_cache(maxsize=NAME_CACHE_SIZE)(self._derive)

    def from_name(self, name: str) -> ObjectId:
        """The id of the object called ``name``; the same in every process."""
        if not isinstance(name, str):
            raise TypeError(f"object names are str, got {type(name).__name__}")
        return ObjectId(self._hex_of_name(name), self.namespace, name)

    def _derive(self, name: str) -> str:
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("object names must be valid Unicode (no lone surrogates)") from None
        if len(raw) > self._name_bytes:
            raise LimitExceeded(
                "name_bytes",
                f"the object name is {len(raw)} bytes; at most {self._name_bytes} are allowed",
            )
        head = hmac.digest(self._key, b"name\x00" + raw, "sha256")[:16]
        return self._seal(head)

    def unique(self) -> ObjectId:
        """A new random id, never equal to another."""
        return ObjectId(self._seal(os.urandom(16)), self.namespace)

    def from_string(self, text: str) -> ObjectId:
        """Parse an id's hex; ``ValueError`` when it is malformed or of another namespace."""
        if not isinstance(text, str) or len(text) != 64 or not _HEX64.fullmatch(text):
            raise ValueError("invalid object id: it must be 64 lowercase hex digits")
        if not self.owns(text):
            raise ValueError(f"invalid object id: it does not belong to namespace {self.namespace}")
        return ObjectId(text, self.namespace)

    def owns(self, hex_id: str) -> bool:
        """True when ``hex_id`` is well formed and its MAC is this namespace's."""
        if len(hex_id) != 64 or not _HEX64.fullmatch(hex_id):
            return False
        head = bytes.fromhex(hex_id[:32])
        return hmac.compare_digest(self._seal(head), hex_id)

    def name_matches(self, hex_id: str, name: str) -> bool:
        try:
            return self.from_name(name).hex == hex_id
        except (TypeError, ValueError):
            return False

    def _seal(self, head: bytes) -> str:
        mac = hmac.digest(self._key, b"mac\x00" + head, "sha256")[:16]
        return (head + mac).hex()


def namespace_key(app_name: str, binding: str, secret: str | None) -> bytes:
    """The namespace's MAC key: from ``secret`` when configured, else from app and binding."""
    material = secret if secret is not None else f"{app_name}\x00{binding}"
    return hashlib.sha256(b"raydo-namespace\x00" + material.encode("utf-8")).digest()
