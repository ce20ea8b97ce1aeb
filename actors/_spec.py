"""What a host needs to know to run objects, as plain picklable data.

The gateway turns ``raydo.toml`` into a :class:`RuntimeSpec`; hosts receive it (over Ray
when they run in a Ray actor) and build their classes, storage and ``env`` from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from raydo.storage import layout
from raydo.storage.limits import DEFAULT_LIMITS, Limits
from raydo.storage.replication import ReplicationSettings

from ._ids import IdScheme, namespace_key


@dataclass(frozen=True, slots=True)
class BindingSpec:
    """One Durable Object namespace: a ``[[durable_objects.bindings]]`` entry (the config
    loader builds these, checking each field) or an internal binding a platform binding adds.
    """

    name: str
    class_name: str
    shards: int = 4
    placement: str = "sharded"
    idle_timeout_s: float = 10.0
    max_live_objects: int = 10_000
    mailbox_limit: int = 1000
    queue_wait_seconds: float = 30.0
    """How long an event may wait in its object's mailbox; one that has not started by then
    is dropped and its caller gets :class:`Overloaded`."""
    cpu_ms: int = 30_000
    """CPU time one event may use (see :mod:`actors._limits`); past it the event is stopped
    and the object reset."""
    event_seconds: float = 300.0
    """Wall time one event may take, awaits included; past it the event is stopped."""
    host_stall_seconds: float = 10.0
    """How long one event may hold its host's loop without yielding; past it the host's
    watchdog stops it (:mod:`actors._watchdog`)."""
    concurrency: str | None = None
    """``"strict"`` (one event at a time, start to finish) or ``"gates"`` (Cloudflare's input
    gates: events interleave at awaits other than storage); None leaves it to the class's
    ``concurrency`` attribute, else strict. See :mod:`actors._input_gate`."""
    namespace_key: str | None = field(default=None, repr=False)
    """A secret; when None the runtime derives one from the app's name and the binding."""
    internal: bool = False
    """Serves a platform binding (a database, a queue); reachable by the binding's code but
    not through ``env``. Internal names start with "_" so no user binding can clash; the
    config has no key for it."""


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """A binding of ``env`` made by code rather than a namespace (``env.DB``, ``env.FILES``).

    ``factory`` names ``module:function``; every process that builds an ``env`` (gateway
    processes and hosts alike) calls it once with a :class:`actors.PlatformContext`.
    ``options`` is the binding's config entry, as plain data.
    """

    name: str
    factory: str
    options: dict[str, Any] = field(default_factory=dict)
    internal: bool = False
    """For raydo's platform objects only (a queue's broker): kept out of the app's ``env``
    and given to those objects in theirs. Internal names start with "_"."""


@dataclass(frozen=True, slots=True)
class HostKey:
    """Which host serves an object: a shard of a binding, or one object's dedicated host."""

    binding: str
    shard: int = -1
    object_hex: str | None = None

    @property
    def label(self) -> str:
        if self.object_hex is not None:
            return f"{self.binding}/object/{self.object_hex}"
        return f"{self.binding}/shard/{self.shard}"

    @classmethod
    def from_label(cls, label: str) -> HostKey:
        binding, kind, which = label.split("/")
        if kind == "object":
            return cls(binding, object_hex=which)
        return cls(binding, shard=int(which))


NODE_STORAGE_VARIABLE = "RAYDO_NODE_STORAGE"


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    """An app as hosts see it."""

    app_name: str
    app_root: str
    storage_root: str
    bindings: tuple[BindingSpec, ...]
    durability: str = "normal"
    limits: Limits = DEFAULT_LIMITS
    extra: dict[str, str] = field(default_factory=dict)
    platform: tuple[PlatformSpec, ...] = ()
    replication: ReplicationSettings | None = None
    """Where every object's log is shipped (``[replication]``); None keeps files local."""
    environ: dict[str, str] = field(default_factory=dict, repr=False)
    """The app's environment variables, as the gateway that made the spec had them: a host
    in another process sets them before it loads the app, so objects read the environment
    ``raydo serve`` was given as they read ``raydo dev``'s (see ``gateway.runtime``)."""

    def on_this_node(self) -> RuntimeSpec:
        """The spec as a host on this machine uses it: with ``RAYDO_NODE_STORAGE`` set (in the
        environment ``ray start`` ran with), objects' files live there, on the node's own
        disk, instead of under the config's ``storage``. With replication the store holds
        every object, so nodes need no shared volume."""
        local = os.environ.get(NODE_STORAGE_VARIABLE)
        return replace(self, storage_root=local) if local else self

    def binding(self, name: str) -> BindingSpec:
        for spec in self.bindings:
            if spec.name == name:
                return spec
        raise KeyError(f"no Durable Object binding named {name!r}")

    def id_scheme(self, binding: BindingSpec) -> IdScheme:
        key = namespace_key(self.app_name, binding.name, binding.namespace_key)
        return IdScheme(binding.name, key, name_bytes=self.limits.name_bytes)

    def standing_hosts(self) -> list[HostKey]:
        """Hosts that must run even without traffic, so their alarms fire and their lost
        sockets close: every shard, and every dedicated host the alarm or socket index names."""
        from ._alarms import AlarmIndex
        from ._socket_index import SocketIndex

        keys: list[HostKey] = []
        for binding in self.bindings:
            if binding.placement == "dedicated":
                labels: set[str] = set()
                root, name = self.storage_root, binding.name
                for index in (
                    AlarmIndex(layout.alarm_index_file(root, name)),
                    SocketIndex(layout.socket_index_file(root, name)),
                ):
                    try:
                        labels.update(index.hosts())
                    finally:
                        index.close()
                keys += [HostKey.from_label(label) for label in sorted(labels)]
            else:
                keys += [HostKey(binding.name, shard=n) for n in range(binding.shards)]
        return keys

    def host_for(self, binding: BindingSpec, object_hex: str) -> HostKey:
        """The host of an object: by a stable hash of its id, or its own when dedicated."""
        if binding.placement == "dedicated":
            return HostKey(binding.name, object_hex=object_hex)
        return HostKey(binding.name, shard=int(object_hex[:16], 16) % binding.shards)
