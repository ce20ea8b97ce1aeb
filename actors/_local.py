"""In-process placement: hosts run in the caller's own event loop.

The same :class:`Host` code as in a Ray actor, without processes or sockets: events and
payloads are the same records (:mod:`actors._payloads`) that travel over the wire.
"""

from __future__ import annotations

from typing import Any

from ._app_env import namespaces_env
from ._env import Env
from ._errors import HostUnavailable
from ._host import Host
from ._intake import CallerOrder
from ._services import Services
from ._spec import HostKey, RuntimeSpec
from ._streams import in_process
from .types import Event
from .websockets import SocketHub


class LocalPlacement:
    """Hosts in this process, made on first use."""

    def __init__(self, spec: RuntimeSpec) -> None:
        self.spec = spec
        self.services: Services | None = None
        self.env, self.platform_env = namespaces_env(self)
        self.hub = SocketHub(spec.limits)
        self.hosts: dict[HostKey, Host] = {}
        self._closed = False
        self._order = CallerOrder()

    def host(self, key: HostKey) -> Host:
        host = self.hosts.get(key)
        if host is None and self._closed:
            raise HostUnavailable("this placement is closed", retryable=False)
        if host is None:
            host = self.hosts[key] = Host(self.spec, key, self.env_of(key))
            host.sockets.attach_gateway(self.hub.gateway_id, self.hub.pushes_from(key))
            host.start()
        return host

    def env_of(self, key: HostKey) -> Env:
        """The env the objects of host ``key`` get: internal bindings' objects get theirs."""
        return self.platform_env if self.spec.binding(key.binding).internal else self.env

    async def start(self) -> None:
        """Start every standing host now, so alarms fire without waiting for traffic."""
        for key in self.spec.standing_hosts():
            self.host(key)

    async def deliver(self, key: HostKey, event: Event) -> Any:
        host = self.host(key)
        if event.streams is not None:  # its bodies stream through pipes in this process
            event.streams = in_process(event.streams, self.spec.limits)
        return await host.deliver(self._order.stamp(key, event))

    async def host_metrics(self) -> list[dict[str, Any]]:
        return [host.metrics_snapshot() for host in self.hosts.values()]

    async def reload_code(self) -> int:
        return sum(host.reload_code() for host in self.hosts.values())

    async def close(self) -> None:
        self._closed = True
        for host in self.hosts.values():
            await host.close()
        self.hosts.clear()
