"""What ``[[vectorize]]`` adds to an app: the internal ``_VECTORIZE`` binding (one object per
shard of each index, each on a host of its own) and ``env.<BINDING>``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from raydo.actors import BindingSpec, PlatformContext, PlatformSpec
from raydo.bindings import Plan

from ._client import VectorizeIndex
from ._search import EXACT_BELOW
from ._shard import GRAPH_BUILD_WAIT_S
from ._types import PRESETS, VectorLimits

#: The internal object binding every shard of every index of an app lives in.
VECTORIZE_BINDING = "_VECTORIZE"


def shape(entry: Mapping[str, Any]) -> tuple[int, str]:
    """An entry's dimensions and metric: given, or its ``preset``'s."""
    preset = entry.get("preset")
    if preset is not None:
        dimensions, metric = PRESETS[str(preset)]
        return int(entry.get("dimensions", dimensions)), str(entry.get("metric", metric))
    return int(entry["dimensions"]), str(entry.get("metric", "cosine"))


def plan(entries: Sequence[Mapping[str, Any]]) -> Plan:
    """The internal binding (when there are indexes) and one ``env`` binding per entry."""
    if not entries:
        return Plan()
    store = BindingSpec(
        name=VECTORIZE_BINDING,
        class_name="raydo.bindings.vectorize._shard:VectorShard",
        # A host (a process of its own) for each shard of each index: a shard's memory is
        # its part of the index, so an index of n shards can hold n hosts' worth, and no two
        # shards of it share a process. Hashing shards over a few hosts put two of the
        # three shards of the tests' index on one host.
        placement="dedicated",
        # A shard's memory is its whole index: keep it loaded rather than rebuild it.
        idle_timeout_s=86400.0,
        mailbox_limit=100_000,
        # Loading a large shard from its file happens on activation, on the host's loop.
        host_stall_seconds=600.0,
        cpu_ms=3_600_000,
        event_seconds=3600.0,
        internal=True,
    )
    return Plan(
        objects=[store],
        platform=[
            PlatformSpec(str(e["binding"]), "raydo.bindings.vectorize:index_binding", dict(e))
            for e in entries
        ],
    )


def index_binding(ctx: PlatformContext) -> VectorizeIndex:
    """``env.<binding>`` in this process. Contacts nothing."""
    options = ctx.options
    dimensions, metric = shape(options)
    return VectorizeIndex(
        ctx.namespace(VECTORIZE_BINDING),
        str(options["index_name"]),
        dimensions,
        metric,
        shards=int(options.get("shards", 1)),
        limits=VectorLimits.from_options(options),
        exact_below=int(options.get("exact_below", EXACT_BELOW)),
        build_wait_s=float(options.get("graph_build_wait_seconds", GRAPH_BUILD_WAIT_S)),
    )
