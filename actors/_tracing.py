"""OpenTelemetry spans across gateway -> host -> object, once a tracer is configured.

Until :func:`configure` or :func:`use_provider` gives this process a tracer, nothing here
runs: namespaces, hosts and the gateway check one flag and make no span at all.

The spans of one HTTP request, parent first:

1. the gateway's ``SERVER`` span of the request (``GET``), continuing a ``traceparent``
   header if the client sent one;
2. a ``CLIENT`` span per stub call (``COUNTER rpc increment``), whose context travels inside
   the event to the host (W3C ``traceparent``/``tracestate``, a small map in the frame);
3. the host's ``SERVER`` span of the event, from its admission to its reply (queue wait,
   turn and commit), with the binding, the host and the object id as attributes;
4. an ``INTERNAL`` span of the object's handler (``Counter.increment``). Calls the object
   makes to other objects are its children, and so on down the chain.

Events a host makes itself (alarms, sockets lost) start their own traces at step 3.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._payloads import RpcCall
from .types import Event, EventKind

if TYPE_CHECKING:
    import asyncio

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from ._spec import HostKey

#: The exporters :func:`configure` knows; "none" turns tracing off.
EXPORTERS = ("console", "otlp", "none")

_tracer: Tracer | None = None


def enabled() -> bool:
    """Whether this process makes spans."""
    return _tracer is not None


def use_provider(provider: TracerProvider | None) -> None:
    """Make spans with ``provider`` from now on (None: stop). Hosts and namespaces made
    before this call keep what they had; tests call it before starting an app."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer("raydo")


def configure(exporter: str, service_name: str = "raydo") -> None:
    """Export this process's spans with ``exporter`` ("console", "otlp" or "none").

    "otlp" needs the ``opentelemetry-exporter-otlp`` package (its endpoint comes from the
    standard ``OTEL_EXPORTER_OTLP_*`` variables); without it this raises ``ValueError``.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown traces exporter {exporter!r}: use one of {', '.join(EXPORTERS)}")
    if exporter == "none":
        use_provider(None)
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
    )

    span_exporter: SpanExporter
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        span_exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
        except ImportError:
            raise ValueError(
                "the otlp traces exporter needs the opentelemetry-exporter-otlp package"
            ) from None
        span_exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    # The console is for watching spans as they happen: print each at once. Real exporters
    # get batches, off the hot path.
    if exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    use_provider(provider)


def exporter_from_environment() -> str | None:
    """The exporter the standard ``OTEL_TRACES_EXPORTER`` variable names, if any; an
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` alone means "otlp"."""
    named = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        return named
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        return "otlp"
    return None


# ---- the caller's side ------------------------------------------------------------------


def _rpc_method(event: Event) -> str | None:
    """The method an RPC event calls, or None (another kind, or a malformed payload)."""
    if event.kind != EventKind.RPC:
        return None
    try:
        return str(RpcCall.decode(event.payload).method)
    except ValueError:
        return None


def _event_name(event: Event) -> str:
    kind = EventKind(event.kind).name.lower()
    method = _rpc_method(event)
    if method is not None:
        return f"{event.binding} {kind} {method}"[:200]
    return f"{event.binding} {kind}"


async def deliver_traced(
    deliver: Callable[[HostKey, Event], Awaitable[Any]], key: HostKey, event: Event
) -> Any:
    """``deliver(key, event)`` inside a ``CLIENT`` span whose context the event carries."""
    from opentelemetry import propagate, trace

    assert _tracer is not None
    with _tracer.start_as_current_span(
        _event_name(event),
        kind=trace.SpanKind.CLIENT,
        attributes={
            "raydo.binding": event.binding,
            "raydo.object_id": event.object_hex,
            "raydo.host": key.label,
        },
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        event.trace = carrier
        return await deliver(key, event)


# ---- the host's side --------------------------------------------------------------------


def event_admitted(host_label: str, event: Event, future: asyncio.Future[Any]) -> None:
    """Start the host's ``SERVER`` span of an event, continuing the trace it carries; it
    ends when the event's reply is settled. The span replaces the carrier on the event."""
    from opentelemetry import propagate, trace

    assert _tracer is not None
    carrier = event.trace if isinstance(event.trace, dict) else None
    parent = propagate.extract(_clean(carrier)) if carrier else None
    span = _tracer.start_span(
        _event_name(event),
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={
            "raydo.binding": event.binding,
            "raydo.object_id": event.object_hex,
            "raydo.host": host_label,
            "raydo.event_kind": EventKind(event.kind).name.lower(),
        },
    )
    event.trace = span
    future.add_done_callback(lambda done: _end(span, done))


def _clean(carrier: dict[Any, Any]) -> dict[str, str]:
    """Only short string headers from a frame reach the propagator (the frame is untrusted)."""
    return {
        k: v
        for k, v in carrier.items()
        if isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
    }


def _end(span: Span, future: asyncio.Future[Any]) -> None:
    from opentelemetry.trace import Status, StatusCode

    error = None if future.cancelled() else future.exception()
    if future.cancelled() or error is not None:
        span.set_status(Status(StatusCode.ERROR, "cancelled" if error is None else str(error)))
        if error is not None:
            span.record_exception(error)
    span.end()


def handler_span(
    handler: Callable[..., Awaitable[Any]], event: Event, class_name: str
) -> Callable[..., Awaitable[Any]]:
    """Wrap an event's handler in an ``INTERNAL`` span, child of the event's host span."""
    from opentelemetry import trace

    assert _tracer is not None
    tracer = _tracer
    parent = event.trace
    context = trace.set_span_in_context(parent) if parent is not None else None
    name = f"{class_name}.{_handler_name(event)}"

    async def traced(*args: Any) -> Any:
        with tracer.start_as_current_span(name, context=context):
            return await handler(*args)

    return traced


def _handler_name(event: Event) -> str:
    kind = event.kind
    method = _rpc_method(event)
    if method is not None:
        return method[:100]
    return {
        EventKind.FETCH: "fetch",
        EventKind.ALARM: "alarm",
        EventKind.CONTROL: "control",
        EventKind.WS_MESSAGE: "web_socket_message",
        EventKind.WS_CLOSE: "web_socket_close",
        EventKind.WS_ERROR: "web_socket_error",
    }.get(EventKind(kind), "event")
