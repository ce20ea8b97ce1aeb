"""The shapes a vector index takes and gives back: vectors, matches, mutations, the index's
description, its limits and the metrics' presets."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

Metric = Literal["cosine", "euclidean", "dot-product"]
METRICS: tuple[str, ...] = ("cosine", "euclidean", "dot-product")
ReturnMetadata = Literal["none", "indexed", "all"]
RETURN_METADATA: tuple[str, ...] = ("none", "indexed", "all")
#: The types a metadata index may have (Cloudflare's).
INDEX_TYPES: tuple[str, ...] = ("string", "number", "boolean")

#: ``preset = "<model>"``: the dimensions and metric of the embedding models Cloudflare knows.
PRESETS: dict[str, tuple[int, Metric]] = {
    "@cf/baai/bge-small-en-v1.5": (384, "cosine"),
    "@cf/baai/bge-base-en-v1.5": (768, "cosine"),
    "@cf/baai/bge-large-en-v1.5": (1024, "cosine"),
    "openai/text-embedding-ada-002": (1536, "cosine"),
    "cohere/embed-multilingual-v2.0": (768, "cosine"),
}


class VectorizeError(ValueError):
    """A call to a vector index was refused (malformed input, an index in another shape);
    nothing of the call was written."""


def changed_shape(held: tuple[object, object], wanted: tuple[object, object]) -> VectorizeError:
    """The refusal of a call whose config gives the index another shape than it holds
    (``(dimensions, metric)`` each)."""
    return VectorizeError(
        f"the index holds vectors of {held[0]} dimensions ({held[1]});"
        f" the config says {wanted[0]} ({wanted[1]}): delete the index"
        " (raydo vectorize delete) or set the config back"
    )


@dataclass(frozen=True, slots=True)
class VectorLimits:
    """What one index accepts; each breach is a ``LimitExceeded`` naming the field, and
    nothing of the call is written. Each is a key of the ``[[vectorize]]`` entry."""

    max_dimensions: int = 1536
    max_id_bytes: int = 64
    max_namespace_bytes: int = 64
    max_metadata_bytes: int = 10 * 1024
    max_top_k: int = 100
    #: ``top_k`` with ``return_values=True`` or ``return_metadata="all"``.
    max_top_k_with_values: int = 50
    max_batch: int = 1000
    max_filter_bytes: int = 2048
    max_vectors: int = 20_000_000
    max_metadata_indexes: int = 10

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> VectorLimits:
        return cls(**{name: int(options[name]) for name in cls.names() if name in options})


@dataclass(frozen=True, slots=True)
class Vector:
    """One vector to write: an id (1 to 64 bytes), its values, an optional namespace and
    metadata (JSON, at most 10 KiB). A dict with these keys is accepted as well."""

    id: str
    values: list[float] | Any
    namespace: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VectorMatch:
    """One result of a query. ``values``, ``metadata`` and ``namespace`` are there only when
    the query asked for them."""

    id: str
    score: float
    values: list[float] | None = None
    namespace: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VectorMatches:
    """The matches of a query, closest first, and how many there are."""

    matches: list[VectorMatch] = field(default_factory=list)
    count: int = 0


@dataclass(frozen=True, slots=True)
class StoredVector:
    """A vector as ``get_by_ids`` returns it."""

    id: str
    values: list[float]
    namespace: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VectorMutation:
    """What a write did: its id (``processed_up_to_mutation`` of :meth:`describe` once
    applied, which is when the call returns), and how many vectors it wrote or deleted."""

    mutation_id: str
    count: int


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """``describe()``: the vectors in the index, its shape, and the last mutation applied."""

    vector_count: int
    dimensions: int
    metric: str
    processed_up_to_mutation: str | None
    processed_up_to_datetime: str | None


@dataclass(frozen=True, slots=True)
class MetadataIndex:
    """A metadata index: the property it makes filterable, and the type of values it holds."""

    property_name: str
    index_type: str
