"""The vector index (``[[vectorize]]``, ``env.VECTORIZE``): Cloudflare Vectorize's shape.

::

    await env.VECTORIZE.upsert([{"id": "1", "values": emb, "metadata": {"url": "/a"}}])
    hits = await env.VECTORIZE.query(emb, top_k=5, return_metadata="all")

The client is :class:`VectorizeIndex` (``_client``), which checks every argument
(``_checks``, filters in ``_filter``); each index is ``shards`` objects of the internal
binding ``_VECTORIZE`` (``_shard``), each holding its vectors in its SQLite file and in memory
(``_search``: numpy, and an HNSW graph from usearch); ``_plan`` turns the config entries
into bindings.
"""

from ._client import VectorizeIndex, shard_name, shard_of
from ._filter import parse_filter
from ._plan import VECTORIZE_BINDING, index_binding, plan, shape
from ._search import EXACT_BELOW, EXPANSION_SEARCH, VectorTable
from ._types import (
    INDEX_TYPES,
    METRICS,
    PRESETS,
    IndexInfo,
    MetadataIndex,
    StoredVector,
    Vector,
    VectorizeError,
    VectorLimits,
    VectorMatch,
    VectorMatches,
    VectorMutation,
)

__all__ = [
    "EXACT_BELOW",
    "EXPANSION_SEARCH",
    "INDEX_TYPES",
    "METRICS",
    "PRESETS",
    "VECTORIZE_BINDING",
    "IndexInfo",
    "MetadataIndex",
    "StoredVector",
    "Vector",
    "VectorLimits",
    "VectorMatch",
    "VectorMatches",
    "VectorMutation",
    "VectorTable",
    "VectorizeError",
    "VectorizeIndex",
    "index_binding",
    "parse_filter",
    "plan",
    "shape",
    "shard_name",
    "shard_of",
]
