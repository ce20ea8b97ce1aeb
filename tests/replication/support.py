"""Looking into an in-process app's replication: its hosts' counters and its store."""

from __future__ import annotations

from raydo.actors.placement import LocalPlacement
from raydo.gateway.testing import TestApp
from raydo.storage.replication import ReplicationStats


def stats(app: TestApp) -> ReplicationStats:
    """The replication counters of every host of ``app`` (hosts in this process), summed."""
    placement = app.gateway.placement
    assert isinstance(placement, LocalPlacement)
    total = ReplicationStats()
    for host in placement.hosts.values():
        if host.replication is not None:
            for name in ReplicationStats.__dataclass_fields__:
                setattr(total, name, getattr(total, name) + getattr(host.replication.stats, name))
    return total


def store_requests(app: TestApp) -> int:
    """Requests the hosts of ``app`` made to the store so far."""
    placement = app.gateway.placement
    assert isinstance(placement, LocalPlacement)
    return sum(
        host.replication.store.requests
        for host in placement.hosts.values()
        if host.replication is not None
    )
