"""Platform bindings built on objects: the database (D1 shape), the blob store (R2 shape),
the key-value store (KV shape) and queues.

Each kind is one subpackage (``d1``, ``kv``, ``queues``, ``r2``) whose face names what apps
use and whose ``plan`` turns its config entries into the internal object bindings it needs
and the :class:`actors.PlatformSpec` whose factory builds the ``env`` binding in every
process; the machinery sits in its private modules. ``bindings`` sits under ``gateway``: it
may import ``actors`` and ``storage``, never ``gateway``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raydo.actors import BindingSpec, PlatformSpec


@dataclass
class Plan:
    """What a kind of platform binding adds to the runtime."""

    objects: list[BindingSpec] = field(default_factory=list)
    platform: list[PlatformSpec] = field(default_factory=list)

    def __iadd__(self, other: Plan) -> Plan:
        self.objects += other.objects
        self.platform += other.platform
        return self


__all__ = ["Plan"]
