"""OpenTelemetry spans: one trace from the HTTP request to the objects, parents in order."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from raydo.actors import BindingSpec, RuntimeSpec, _tracing
from raydo.actors._host import Host
from raydo.actors._spec import HostKey
from raydo.actors._wire import HostLink, HostServerProtocol
from raydo.actors.types import Event, EventKind
from raydo.gateway.testing import start_app
from raydo.storage.limits import DEFAULT_LIMITS
from tests.cluster import RayCluster, Server

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_ID = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """This process traces into memory for the test (hosts and namespaces made after this)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        _tracing.use_provider(None)


async def finished(exporter: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    """The spans once ``count`` have ended (the last ones end just after the reply leaves)."""
    for _ in range(500):
        found = list(exporter.get_finished_spans())
        if len(found) >= count:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(exporter.get_finished_spans())} spans ended")


def by_name(found: list[ReadableSpan], name: str, kind: trace.SpanKind) -> ReadableSpan:
    matches = [s for s in found if s.name == name and s.kind == kind]
    assert len(matches) == 1, [(s.name, s.kind) for s in found]
    return matches[0]


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    found: int = span.context.span_id
    return found


async def test_one_trace_from_request_through_nested_calls(
    spans: InMemorySpanExporter, app_copy: Callable[[str], Path]
) -> None:
    async with start_app(app_copy("observed")) as app:
        reply = await app.http.post("/relay/a/b", headers={"traceparent": TRACEPARENT})
        assert reply.json() == {"said": "hello"}
        found = await finished(spans, 7)
        a = app.env.NOISY.id_from_name("a").hex
        b = app.env.NOISY.id_from_name("b").hex

    server, client = trace.SpanKind.SERVER, trace.SpanKind.CLIENT
    request = by_name(found, "POST", server)
    call_relay = by_name(found, "NOISY rpc relay", client)
    host_relay = by_name(found, "NOISY rpc relay", server)
    relay = by_name(found, "Noisy.relay", trace.SpanKind.INTERNAL)
    call_speak = by_name(found, "NOISY rpc speak", client)
    host_speak = by_name(found, "NOISY rpc speak", server)
    speak = by_name(found, "Noisy.speak", trace.SpanKind.INTERNAL)
    chain = [request, call_relay, host_relay, relay, call_speak, host_speak, speak]
    # One trace, continuing the client's, each span the child of the one before.
    assert {s.context.trace_id for s in chain if s.context is not None} == {TRACE_ID}
    assert parent_of(request) == PARENT_ID
    for parent, child in itertools.pairwise(chain):
        assert parent_of(child) == span_id(parent), (child.name, parent.name)
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["url.path"] == "/relay/a/b"
    assert host_relay.attributes is not None and host_speak.attributes is not None
    assert host_relay.attributes["raydo.object_id"] == a
    assert host_speak.attributes["raydo.object_id"] == b
    assert host_speak.attributes["raydo.host"] == "NOISY/shard/0"
    # A child starts after its parent.
    for parent, child in itertools.pairwise(chain):
        assert child.start_time is not None and parent.start_time is not None
        assert child.start_time >= parent.start_time


async def test_a_request_without_traceparent_starts_a_trace_and_errors_are_marked(
    spans: InMemorySpanExporter, app_copy: Callable[[str], Path]
) -> None:
    async with start_app(app_copy("probe")) as app:
        stub = app.env.PROBE.get_by_name("x")
        with pytest.raises(Exception, match="failed on purpose"):
            await stub.fail_after_write()
        found = await finished(spans, 3)
    client = by_name(found, "PROBE rpc fail_after_write", trace.SpanKind.CLIENT)
    host = by_name(found, "PROBE rpc fail_after_write", trace.SpanKind.SERVER)
    handler = by_name(found, "Probe.fail_after_write", trace.SpanKind.INTERNAL)
    assert client.parent is None  # not inside a request: a trace of its own
    assert parent_of(host) == span_id(client) and parent_of(handler) == span_id(host)
    for span in (client, host, handler):
        assert span.status.status_code == trace.StatusCode.ERROR


async def test_no_tracer_no_spans(app_copy: Callable[[str], Path]) -> None:
    """Without a configured tracer nothing is wrapped: events go straight to the placement."""
    exporter = InMemorySpanExporter()
    TracerProvider().add_span_processor(SimpleSpanProcessor(exporter))
    assert not _tracing.enabled()
    async with start_app(app_copy("observed")) as app:
        reply = await app.http.post("/relay/a/b", headers={"traceparent": TRACEPARENT})
        assert reply.json() == {"said": "hello"}
        placement = app.gateway.placement
        assert placement is not None
        assert app.env.NOISY._deliver == placement.deliver
        assert not any(host._traced for host in placement.hosts.values())  # type: ignore[attr-defined]
    assert exporter.get_finished_spans() == ()


def _observed_spec(tmp_path: Path) -> RuntimeSpec:
    from tests.cluster import REPO

    return RuntimeSpec(
        "observed",
        str(REPO / "tests" / "apps" / "observed"),
        str(tmp_path / "storage"),
        bindings=(BindingSpec("NOISY", "objects:Noisy", shards=1),),
    )


async def test_trace_context_crosses_the_wire(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    """Over the TCP event stream (as with Ray hosts) the host continues the caller's trace;
    a trace field that is not a map closes the connection, junk inside one is ignored."""
    spec = _observed_spec(tmp_path)
    key = HostKey("NOISY", shard=0)

    host = Host(spec, key, None)
    host.start()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HostServerProtocol(host, "token", key.label, DEFAULT_LIMITS), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        link = await HostLink.open("127.0.0.1", port, "token", key.label, DEFAULT_LIMITS)
        tracer = trace.get_tracer("test", tracer_provider=_provider(spans))
        with tracer.start_as_current_span("caller") as caller:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            reply = await link.call(_speak(spec, carrier))
        assert reply is not None
        found = await finished(spans, 3)
        host_span = by_name(found, "NOISY rpc speak", trace.SpanKind.SERVER)
        handler = by_name(found, "Noisy.speak", trace.SpanKind.INTERNAL)
        assert parent_of(host_span) == caller.get_span_context().span_id
        assert parent_of(handler) == span_id(host_span)

        # Junk in the map: the event runs, in a trace of its own.
        spans.clear()
        junk: dict[Any, Any] = {"traceparent": "nonsense", 1: 2, "x" * 100: "y" * 10_000}
        assert await link.call(_speak(spec, junk)) is not None
        found = await finished(spans, 2)
        assert by_name(found, "NOISY rpc speak", trace.SpanKind.SERVER).parent is None

        # Not a map at all: the frame is malformed and the connection ends.
        with pytest.raises(Exception, match="lost"):
            await link.call(_speak(spec, ["not", "a", "map"]))
    finally:
        server.close()
        await host.close()


def _provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _speak(spec: RuntimeSpec, carrier: Any) -> Event:
    from raydo.storage import codec

    ids = spec.id_scheme(spec.binding("NOISY"))
    object_id = ids.from_name("a")
    event = Event(
        "NOISY", object_id.hex, "a", "chain", EventKind.RPC, ["speak", codec.encode([["hi"], {}])]
    )
    event.trace = carrier
    return event


def test_configure_knows_its_exporters() -> None:
    with pytest.raises(ValueError, match="unknown traces exporter"):
        _tracing.configure("zipkin-over-fax")
    with pytest.raises(ValueError, match="opentelemetry-exporter-otlp"):
        _tracing.configure("otlp")
    assert not _tracing.enabled()
    _tracing.configure("none")
    assert not _tracing.enabled()


@pytest.mark.ray
def test_hosts_on_ray_continue_the_trace_and_log_json(
    gateway: Callable[..., Server],
    app_copy: Callable[[str], Path],
    ray_cluster: RayCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``raydo serve`` with ``OTEL_TRACES_EXPORTER=console`` and ``--log-format json``: the
    hosts, in Ray actors, get both settings through the spec; their spans (printed by the
    console exporter to the actor's stdout) continue the request's trace, and the object's
    record is a JSON line with its binding and id (the actor's stderr)."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    server = gateway(app_copy("observed"), args=["--log-format", "json"])
    reply = httpx.post(f"{server.url}/relay/a/b", headers={"traceparent": TRACEPARENT}, timeout=30)
    assert reply.json() == {"said": "hello"}
    logs = ray_cluster.temp_dir / "session_latest" / "logs"
    trace_id = f"0x{TRACE_ID:032x}"
    spans: list[dict[str, Any]] = []
    said: list[dict[str, Any]] = []
    for _ in range(300):  # the console exporter prints in batches, every few seconds
        spans = [s for s in _console_spans(logs) if s["context"]["trace_id"] == trace_id]
        said = [r for r in _json_records(logs) if r.get("message") == "said hello"]
        if len(spans) >= 5 and said:  # the host's five; the gateway prints its own
            break
        time.sleep(0.1)
    names = {(s["name"], s["kind"]) for s in spans}
    assert ("NOISY rpc relay", "SpanKind.SERVER") in names
    assert ("Noisy.relay", "SpanKind.INTERNAL") in names
    assert ("NOISY rpc speak", "SpanKind.CLIENT") in names  # the host's own call to b
    assert ("Noisy.speak", "SpanKind.INTERNAL") in names
    assert said and said[-1]["binding"] == "NOISY" and said[-1]["object_name"] == "b"


def _console_spans(logs: Path) -> Iterator[dict[str, Any]]:
    """Spans the console exporter printed (indented JSON objects) in the workers' stdout."""
    decoder = json.JSONDecoder()
    for path in logs.glob("worker-*.out"):
        text = path.read_text(errors="replace")
        at = text.find("{")
        while at != -1:
            try:
                value, end = decoder.raw_decode(text, at)
            except json.JSONDecodeError:
                at = text.find("{", at + 1)
                continue
            if isinstance(value, dict) and "context" in value:
                yield value
            at = text.find("{", end)


def _json_records(logs: Path) -> Iterator[dict[str, Any]]:
    for path in logs.glob("worker-*.err"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue
