"""Placement: where hosts run and how events reach them.

A :class:`Placement` is the one extension point between stubs and hosts. Two exist:
:class:`actors._local.LocalPlacement` runs hosts in the calling process (tests, single
process), and :class:`actors._ray.RayPlacement` runs each host in a detached Ray actor and
carries events over a direct stream to it.
"""

from __future__ import annotations

from typing import Any, Protocol

from ._env import Env
from ._services import Services
from ._spec import HostKey, RuntimeSpec
from .types import Event
from .websockets import SocketHub


class Placement(Protocol):
    spec: RuntimeSpec
    env: Env
    """The app's bindings (those its config names), routed through this placement."""
    platform_env: Env
    """What platform objects get: ``env`` plus the internal bindings."""
    hub: SocketHub
    """The client WebSockets this process holds."""
    services: Services | None
    """Where platform bindings' service actors run (on Ray); None in process."""

    async def deliver(self, key: HostKey, event: Event) -> Any:
        """Send ``event`` to the host ``key`` and return its reply payload.

        Sets the event's ``caller`` and ``seq``; raises :class:`actors.RaydoError` subclasses.
        """
        ...

    async def start(self) -> None:
        """Start the hosts that must run without traffic (every shard; dedicated hosts with
        alarms), so every alarm fires."""
        ...

    async def reload_code(self) -> int:
        """Hot reload: every running host takes its object class again from the app's
        modules and deactivates its objects (``Host.reload_code``); how many objects were
        live. Hosts in this process use what it imports now (the caller has made it forget
        the app's modules: :func:`actors.forget_app_modules`); hosts in other processes
        forget theirs first."""
        ...

    async def close(self) -> None:
        """Release connections (and, for in-process hosts, the hosts themselves)."""
        ...

    async def host_metrics(self) -> list[dict[str, Any]]:
        """A snapshot of every running host's counters (``Host.metrics_snapshot``); a host
        that does not answer in time gives only ``{"binding", "host", "up": False}``."""
        ...
