"""What ``[[kv_namespaces]]`` adds to an app: the internal ``_KV`` binding and ``env.CONFIG``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from raydo.actors import BindingSpec, PlatformContext, PlatformSpec
from raydo.bindings import Plan
from raydo.storage.limits import MiB

from ._cache import process_cache
from ._namespace import KVNamespace

#: The internal object binding every key-value namespace of an app lives in.
KV_BINDING = "_KV"


def plan(entries: Sequence[Mapping[str, Any]]) -> Plan:
    """The internal object binding (``_KV``, one object per namespace) and one ``env``
    binding per ``[[kv_namespaces]]`` entry."""
    if not entries:
        return Plan()
    store = BindingSpec(
        name=KV_BINDING,
        class_name="raydo.bindings.kv._store:KVStore",
        # One host for all of an app's namespaces: most reads end in the processes' caches.
        shards=1,
        idle_timeout_s=300.0,
        mailbox_limit=100_000,
        internal=True,
    )
    return Plan(
        objects=[store],
        platform=[
            PlatformSpec(str(e["binding"]), "raydo.bindings.kv:make_namespace", dict(e))
            for e in entries
        ],
    )


def make_namespace(ctx: PlatformContext) -> KVNamespace:
    """``env.<binding>`` in this process: a stub of the namespace's object and this
    process's cache of it. Contacts nothing."""
    options = ctx.options
    name = str(options.get("id") or options["binding"])
    namespace = ctx.namespace(KV_BINDING)
    budget = int(options.get("cache_bytes", 64 * MiB))
    cache = None
    if budget > 0:
        identity = (ctx.runtime.app_name, ctx.runtime.storage_root, name)
        cache = process_cache(identity, budget)
    return KVNamespace(
        namespace,
        namespace.id_from_name(name),
        limits=ctx.runtime.limits,
        cache=cache,
        cache_ttl=float(options.get("cache_ttl", 60.0)),
        min_ttl=float(options.get("min_ttl", 60.0)),
    )
