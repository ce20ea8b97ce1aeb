"""Service actors: long-lived Python objects a platform binding runs beside the hosts (the
model binding's model replicas), reached by method calls.

A :class:`ServiceSpec` names the object's factory (``module:function``) and its arguments,
how many replicas to run and what each reserves (CPUs, GPUs). On Ray each replica is a
detached, named Ray actor (``raydo-svc:<app>:<name>:<i>``, made once, found by every process
of the app, stopped with its hosts); in process there are no service actors, and the binding
runs its object itself (:attr:`PlatformContext.services` is None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service: ``replicas`` copies of the object ``factory(**arguments)`` makes."""

    name: str
    factory: str
    arguments: dict[str, Any] = field(default_factory=dict)
    replicas: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0


class ServiceReplica(Protocol):
    """One replica of a service."""

    async def call(self, method: str, *args: Any) -> Any:
        """Await ``method(*args)`` of the replica's object and return its result; an
        exception the method raised is raised here as itself."""
        ...


class Services(Protocol):
    """Where service actors run (the Ray placement's)."""

    def replicas(self, spec: ServiceSpec) -> list[ServiceReplica]:
        """The service's replicas, made if they do not exist. Contacts nothing until called."""
        ...
