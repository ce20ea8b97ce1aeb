"""The Prometheus endpoint of a gateway process, and what the gateway counts itself.

What happens on a scrape, in order:

1. The endpoint (``prometheus_client``'s threaded HTTP server, on its own port, 127.0.0.1
   unless asked otherwise) calls :class:`RaydoCollector` in a thread of its own.
2. When this endpoint reports hosts, the collector asks the placement, on the gateway's
   event loop, for a snapshot of every host: in-process hosts answer at once; hosts in Ray
   actors are found by name and asked through Ray (a control call, never the event stream).
3. The host snapshots become series labelled ``binding`` and ``host``; the gateway's own
   counters (HTTP requests, WebSockets) are added, and everything is rendered.

Hosts count with plain integers (see :mod:`actors.observability`), so counting costs the hot path
well under a microsecond; nothing is rendered until someone scrapes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from raydo.actors.observability import Histogram, tracer, tracing_enabled
from raydo.actors.placement import Placement

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

log = logging.getLogger("raydo.metrics")

#: How long a scrape waits for the hosts' snapshots before rendering without them.
COLLECT_TIMEOUT_S = 10.0

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Host counters (``Host.stats`` keys) and the series they become.
_HOST_COUNTERS = (
    ("activations", "raydo_activations", "Objects constructed (first event, or after eviction)"),
    ("evictions", "raydo_evictions", "Objects evicted (idle, over max_live_objects, or asked)"),
    ("overloads", "raydo_overloads", "Events refused because the object's mailbox was full"),
    ("resets", "raydo_resets", "Objects reset by an exception or ctx.abort()"),
    ("alarms", "raydo_alarm_runs", "alarm() handler runs"),
    ("alarm_retries", "raydo_alarm_retries", "Failed alarm runs scheduled again"),
    ("ws_sends", "raydo_websocket_sends", "Messages objects sent to WebSocket clients"),
    ("stops_cpu_ms", "raydo_event_stops_cpu_ms", "Events stopped past their cpu_ms"),
    ("stops_event_seconds", "raydo_event_stops_event_seconds", "Events stopped past event_seconds"),
    (
        "stops_host_stall_seconds",
        "raydo_event_stops_host_stall_seconds",
        "Events stopped for holding the host's loop past host_stall_seconds",
    ),
    ("stalls", "raydo_host_stalls", "Times a host's loop did not turn for host_stall_seconds"),
    (
        "stop_escalations",
        "raydo_event_stop_escalations",
        "Stopped events that still held the host's loop a stall bound later",
    ),
)


#: The replication counters of a host's snapshot (``[replication]`` only): key, name, help.
_REPLICATION_COUNTERS = (
    ("segments", "raydo_replication_segments", "Log segments shipped to the replication store"),
    ("snapshots", "raydo_replication_snapshots", "Snapshots shipped to the replication store"),
    ("bytes_shipped", "raydo_replication_shipped_bytes", "Bytes of entries shipped"),
    ("failures", "raydo_replication_failures", "Store writes that failed (each retry counts)"),
    ("restores", "raydo_replication_restores", "Objects restored from the store"),
    ("restore_seconds", "raydo_replication_restore_seconds", "Time spent restoring objects"),
    ("take_overs", "raydo_replication_take_overs", "Objects' logs taken over by this host"),
    ("fenced", "raydo_replication_fenced", "Objects dropped because another owner took them"),
    ("versions", "raydo_replication_versions", "Rounds acknowledged from the host log"),
    ("slots", "raydo_replication_host_log_slots", "Host log slots stored (one write each)"),
)


@dataclass(frozen=True)
class MetricsOptions:
    """Where a gateway process serves its metrics.

    The endpoint listens on ``host`` at the first free port of ``port`` ..
    ``port + ports - 1`` (``serve --workers N`` gives each worker a port of that range;
    ``port`` 0 takes any free one). Only the endpoint that gets ``port`` itself reports the
    hosts' metrics too, so no host is counted twice across a gateway's workers.
    """

    port: int
    host: str = "127.0.0.1"
    ports: int = 1


class GatewayMetrics:
    """What one gateway process counts: HTTP requests by method and status, and their time."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.durations = Histogram(1)

    def request_done(self, method: str, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else "other", str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        self.durations.observe(0, seconds)


class Observed(Protocol):
    """What the endpoint reads of a gateway (:class:`gateway.app.Gateway` is one): its own
    counters, and its placement (None until it starts) for the hosts' snapshots."""

    @property
    def metrics(self) -> GatewayMetrics: ...

    @property
    def placement(self) -> Placement | None: ...


async def observe_http(
    metrics: GatewayMetrics, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve one HTTP request with ``app``, counting it, inside a ``SERVER`` span when tracing
    (continuing the client's ``traceparent``, if any)."""
    started = time.perf_counter()
    status = 500  # what the client gets if the app raises before answering

    async def send_status(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        await send(message)

    try:
        if tracing_enabled():
            await _traced(app, scope, receive, send_status, lambda: status)
        else:
            await app(scope, receive, send_status)
    finally:
        metrics.request_done(scope.get("method", ""), status, time.perf_counter() - started)


async def _traced(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, status: Callable[[], int]
) -> None:
    from opentelemetry import propagate, trace

    spans = tracer()
    assert spans is not None
    headers = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in scope.get("headers", ())
        if k in (b"traceparent", b"tracestate")
    }
    method = str(scope.get("method", ""))
    with spans.start_as_current_span(
        method if method in _METHODS else "HTTP",
        context=propagate.extract(headers) if headers else None,
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": str(scope.get("path", ""))},
    ) as span:
        try:
            await app(scope, receive, send)
        finally:
            span.set_attribute("http.response.status_code", status())


class RaydoCollector(Collector):
    """Renders a gateway's counters and, if asked, its hosts' snapshots, on each scrape."""

    def __init__(
        self, gateway: Observed, loop: asyncio.AbstractEventLoop, *, hosts: bool = True
    ) -> None:
        self._gateway = gateway
        self._loop = loop
        self._hosts = hosts

    def collect(self) -> Iterator[Metric]:
        yield from self._gateway_metrics()
        if self._hosts:
            yield from host_families(self._snapshots())

    def _snapshots(self) -> list[dict[str, Any]]:
        placement = self._gateway.placement
        if placement is None or self._loop.is_closed():
            return []
        future = asyncio.run_coroutine_threadsafe(placement.host_metrics(), self._loop)
        try:
            return future.result(COLLECT_TIMEOUT_S)
        except Exception:  # a scrape still shows the gateway's own numbers
            future.cancel()  # slow lookups must not pile up scrape after scrape
            log.exception("collecting the hosts' metrics failed")
            return []

    def _gateway_metrics(self) -> Iterator[Metric]:
        metrics = self._gateway.metrics
        requests = CounterMetricFamily(
            "raydo_http_requests",
            "HTTP requests this gateway process answered",
            labels=["method", "status"],
        )
        for (method, status), count in list(metrics.requests.items()):
            requests.add_metric([method, status], count)
        yield requests
        duration = HistogramMetricFamily(
            "raydo_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response",
        )
        counts, total = metrics.durations.counts[0], metrics.durations.sums[0]
        duration.add_metric([], _cumulative(metrics.durations.bounds, counts), total)
        yield duration
        placement = self._gateway.placement
        hub = placement.hub if placement is not None else None
        open_now = GaugeMetricFamily(
            "raydo_websockets_open",
            "Client WebSockets open in this gateway process",
            labels=["binding"],
        )
        opened = CounterMetricFamily(
            "raydo_websockets_opened",
            "Client WebSockets this gateway process accepted",
            labels=["binding"],
        )
        received = CounterMetricFamily(
            "raydo_websocket_messages_received",
            "Client WebSocket messages this gateway process passed to objects",
            labels=["binding"],
        )
        if hub is not None:
            for binding, count in hub.open_by_binding().items():
                open_now.add_metric([binding], count)
            for binding, counts_of in list(hub.counts.items()):
                opened.add_metric([binding], counts_of.opened)
                received.add_metric([binding], counts_of.messages_in)
        yield from (open_now, opened, received)


def host_families(snapshots: list[dict[str, Any]]) -> Iterator[Metric]:
    """The series of the hosts' snapshots, each labelled with its binding and host."""
    labels = ["binding", "host"]
    up = GaugeMetricFamily("raydo_host_up", "1 if the host answered this scrape", labels=labels)
    live = GaugeMetricFamily("raydo_live_objects", "Objects in memory", labels=labels)
    depth = GaugeMetricFamily(
        "raydo_mailbox_depth", "Events waiting in the host's mailboxes", labels=labels
    )
    deepest = GaugeMetricFamily(
        "raydo_mailbox_depth_max", "Events waiting in the host's fullest mailbox", labels=labels
    )
    counters = {
        key: CounterMetricFamily(name, doc, labels=labels) for key, name, doc in _HOST_COUNTERS
    }
    kinds = [*labels, "kind"]
    events = CounterMetricFamily("raydo_events", "Events handled, by kind", labels=kinds)
    errors = CounterMetricFamily(
        "raydo_event_errors", "Events that failed (refused, raised, reset), by kind", labels=kinds
    )
    durations = HistogramMetricFamily(
        "raydo_event_duration_seconds",
        "Time of an event's turn in its host (handler and commit), by kind",
        labels=kinds,
    )
    replication = {
        key: CounterMetricFamily(name, doc, labels=labels)
        for key, name, doc in _REPLICATION_COUNTERS
    }
    behind = GaugeMetricFamily(
        "raydo_replication_objects_behind",
        "Objects with commits not in the replication store yet",
        labels=labels,
    )
    lag = GaugeMetricFamily(
        "raydo_replication_lag_seconds",
        "How long the oldest commit not in the replication store has waited",
        labels=labels,
    )
    for snapshot in snapshots:
        where = [str(snapshot.get("binding")), str(snapshot.get("host"))]
        answered = snapshot.get("up", True)
        up.add_metric(where, 1 if answered else 0)
        if not answered:
            continue
        live.add_metric(where, snapshot["live_objects"])
        depth.add_metric(where, snapshot["mailbox_depth"])
        deepest.add_metric(where, snapshot["mailbox_depth_max"])
        stats = snapshot["stats"]
        for key, family in counters.items():
            family.add_metric(where, stats.get(key, 0))
        for kind, count in snapshot["events"].items():
            events.add_metric([*where, kind], count)
        for kind, count in snapshot["errors"].items():
            errors.add_metric([*where, kind], count)
        bounds = snapshot["bounds"]
        for kind, row in snapshot["durations"].items():
            durations.add_metric([*where, kind], _cumulative(bounds, row[:-1]), row[-1])
        shipped = snapshot.get("replication")
        if shipped is not None:
            for key, family in replication.items():
                family.add_metric(where, shipped.get(key, 0))
            behind.add_metric(where, shipped["objects_behind"])
            lag.add_metric(where, shipped["lag_seconds"])
    yield from (up, live, depth, deepest, *counters.values(), events, errors, durations)
    if any(snapshot.get("replication") is not None for snapshot in snapshots):
        yield from (*replication.values(), behind, lag)


def _cumulative(bounds: Any, counts: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (the last one past every bound) as Prometheus's cumulative buckets."""
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip([*map(str, bounds), "+Inf"], counts, strict=True):
        running += count
        buckets.append((bound, running))
    return buckets


class MetricsEndpoint:
    """A running endpoint; :meth:`stop` closes it."""

    def __init__(self, server: WSGIServer, host: str) -> None:
        self._server = server
        self.host = host
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    @classmethod
    def start(cls, gateway: Observed, options: MetricsOptions) -> MetricsEndpoint:
        """Listen at the first free port of the options' range; ``OSError`` if none is."""
        last: OSError | None = None
        for port in range(options.port, options.port + max(options.ports, 1)):
            registry = CollectorRegistry(auto_describe=False)
            collector = RaydoCollector(
                gateway, asyncio.get_running_loop(), hosts=port == options.port
            )
            registry.register(collector)
            ProcessCollector(registry=registry)
            try:
                server, _ = start_http_server(port, options.host, registry)
            except OSError as exc:
                last = exc
                continue
            return cls(server, options.host)
        raise OSError(
            f"no free metrics port in {options.port}-{options.port + options.ports - 1}"
            f" on {options.host}: {last}"
        )

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
