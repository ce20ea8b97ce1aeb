"""Counters of hosts (and of a gateway's WebSockets): plain integers bumped on the hot path,
read as a snapshot when the metrics endpoint is scraped.

Counting an event costs a list increment and a bisect (about 0.15 µs); a Prometheus client
metric with labels costs about 3 µs per event and takes a lock, so hosts keep their own
numbers and the gateway renders them (:mod:`gateway.metrics`) when the endpoint is scraped.
A snapshot is plain data (str, int, float, lists, dicts), so it crosses Ray unchanged.
"""

from __future__ import annotations

import bisect
from typing import Any

from .types import EventKind

#: Upper bounds (seconds) of the event duration histogram's buckets; one more counts the rest.
DURATION_BOUNDS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

#: Label values of the event kinds, indexed by :class:`EventKind`.
KIND_NAMES: tuple[str, ...] = tuple(kind.name.lower() for kind in EventKind)


class Histogram:
    """Counts of observations per bucket (not cumulative) and their sum, one per label."""

    __slots__ = ("bounds", "counts", "sums")

    def __init__(self, labels: int, bounds: tuple[float, ...] = DURATION_BOUNDS) -> None:
        self.bounds = bounds
        self.counts = [[0] * (len(bounds) + 1) for _ in range(labels)]
        self.sums = [0.0] * labels

    def observe(self, label: int, value: float) -> None:
        self.counts[label][bisect.bisect_left(self.bounds, value)] += 1
        self.sums[label] += value

    def snapshot(self, names: tuple[str, ...]) -> dict[str, list[Any]]:
        """``{name: [count per bucket..., sum]}`` for the labels seen at least once."""
        return {
            name: [*counts, total]
            for name, counts, total in zip(names, self.counts, self.sums, strict=True)
            if any(counts)
        }


class HostMetrics:
    """Everything a host counts: its events per kind (count, errors, durations) and its
    counters of what happened to its objects. ``stats()`` is the flat counter table the
    metrics endpoint and ``HostActor.stats`` read."""

    __slots__ = (
        "activations",
        "alarm_retries",
        "alarms",
        "durations",
        "errors",
        "events",
        "evictions",
        "overloads",
        "resets",
        "stalls",
        "stop_escalations",
        "stops_cpu_ms",
        "stops_event_seconds",
        "stops_host_stall_seconds",
        "ws_sends",
    )

    def __init__(self) -> None:
        self.events = [0] * len(KIND_NAMES)
        self.errors = [0] * len(KIND_NAMES)
        self.durations = Histogram(len(KIND_NAMES))
        self.activations = 0
        self.evictions = 0
        self.overloads = 0
        self.resets = 0
        self.alarms = 0
        self.alarm_retries = 0
        self.ws_sends = 0
        # The watchdog's (actors._watchdog): events stopped past each limit, times the loop
        # did not turn for host_stall_seconds, and stopped events that would not end.
        self.stops_cpu_ms = 0
        self.stops_event_seconds = 0
        self.stops_host_stall_seconds = 0
        self.stalls = 0
        self.stop_escalations = 0

    def event_done(self, kind: int, seconds: float, failed: bool) -> None:
        """One event's turn ended after ``seconds`` (handler and commit)."""
        self.events[kind] += 1
        if failed:
            self.errors[kind] += 1
        self.durations.observe(kind, seconds)

    def stats(self) -> dict[str, int]:
        """The counters by name; ``events`` counts every event of every kind."""
        return {
            "events": sum(self.events),
            "activations": self.activations,
            "evictions": self.evictions,
            "overloads": self.overloads,
            "resets": self.resets,
            "alarms": self.alarms,
            "alarm_retries": self.alarm_retries,
            "ws_sends": self.ws_sends,
            "stops_cpu_ms": self.stops_cpu_ms,
            "stops_event_seconds": self.stops_event_seconds,
            "stops_host_stall_seconds": self.stops_host_stall_seconds,
            "stalls": self.stalls,
            "stop_escalations": self.stop_escalations,
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "stats": self.stats(),
            "events": _by_name(self.events),
            "errors": _by_name(self.errors),
            "durations": self.durations.snapshot(KIND_NAMES),
            "bounds": list(self.durations.bounds),
        }


def _by_name(counts: list[int]) -> dict[str, int]:
    return {name: n for name, n in zip(KIND_NAMES, counts, strict=True) if n}


class SocketCounts:
    """What one gateway process counts about the client WebSockets of one binding."""

    __slots__ = ("messages_in", "opened")

    def __init__(self) -> None:
        self.opened = 0
        self.messages_in = 0


def socket_counts(table: dict[str, SocketCounts], binding: str) -> SocketCounts:
    """The counts of ``binding`` in ``table``, made on first use."""
    counts = table.get(binding)
    if counts is None:
        counts = table[binding] = SocketCounts()
    return counts
