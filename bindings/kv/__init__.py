"""Key-value namespaces (``[[kv_namespaces]]``, ``env.CONFIG``), shaped like Cloudflare KV.

::

    await env.CONFIG.put("theme", "dark", expiration_ttl=3600)
    theme = await env.CONFIG.get("theme")

The client is :class:`KVNamespace` (``_namespace``), which checks its arguments (``_checks``)
and reads through a per-process cache (``_cache``); each namespace is owned by one object of
the internal binding ``_KV`` (``_store``); ``_plan`` turns the config entries into bindings.
"""

from ._namespace import (
    KVKey,
    KVListResult,
    KVNamespace,
    KVValueWithMetadata,
    PutValue,
    ValueChanged,
    ValueType,
)
from ._plan import KV_BINDING, make_namespace, plan

__all__ = [
    "KV_BINDING",
    "KVKey",
    "KVListResult",
    "KVNamespace",
    "KVValueWithMetadata",
    "PutValue",
    "ValueChanged",
    "ValueType",
    "make_namespace",
    "plan",
]
