"""The Prometheus endpoint: scraped over HTTP after real traffic, parsed, values and labels."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from raydo.actors import Overloaded
from raydo.gateway.testing import TestApp, start_app
from tests.cluster import Server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by its name and labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def wait_for_metrics(client: httpx.Client, url: str, timeout: float = 60.0) -> None:
    """Until ``url`` answers: a worker of ``serve --workers N`` serves its metrics once started."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.get(url).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(found) for (n, found), _ in samples.items() if n == name]


async def scrape(app: TestApp) -> Samples:
    async with httpx.AsyncClient(timeout=30) as client:
        reply = await client.get(app.metrics_url)
    assert reply.status_code == 200
    return parse(reply.text)


async def scrape_until(app: TestApp, done: Callable[[Samples], bool]) -> Samples:
    """Scrape until ``done`` holds (events the test cannot await, like a socket's close)."""
    for _ in range(400):
        samples = await scrape(app)
        if done(samples):
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached: {done}")


async def test_events_objects_and_requests_per_binding_and_host(
    app_copy: Callable[[str], Path],
) -> None:
    async with start_app(app_copy("counter"), metrics=True) as app:
        for name in ("a", "a", "a", "b"):
            assert (await app.http.post(f"/counter/{name}/increment")).status_code == 200
        assert (await app.http.get("/counter/a/fetch")).status_code == 200
        assert (await app.http.get("/nowhere")).status_code == 404
        assert await app.evict("COUNTER", "a")

        samples = await scrape(app)
        spec = app.gateway.spec
        binding = spec.binding("COUNTER")
        host_a = spec.host_for(binding, app.env.COUNTER.id_from_name("a").hex).label
        host_b = spec.host_for(binding, app.env.COUNTER.id_from_name("b").hex).label

        # Both shard hosts run (standing hosts) and answered.
        assert {s["host"] for s in series(samples, "raydo_host_up")} == {
            "COUNTER/shard/0",
            "COUNTER/shard/1",
        }
        assert total(samples, "raydo_host_up") == 2
        a_rpc = 3 + (1 if host_b == host_a else 0)
        assert total(samples, "raydo_events_total", host=host_a, kind="rpc") == a_rpc
        assert total(samples, "raydo_events_total", binding="COUNTER", kind="rpc") == 4
        assert total(samples, "raydo_events_total", host=host_a, kind="fetch") == 1
        assert total(samples, "raydo_events_total", host=host_a, kind="control") == 1
        assert total(samples, "raydo_event_errors_total") == 0
        # The histogram counted every event once, with cumulative buckets.
        count = total(samples, "raydo_event_duration_seconds_count", kind="rpc")
        assert count == 4
        buckets = [
            total(samples, "raydo_event_duration_seconds_bucket", kind="rpc", le=le)
            for le in ("0.0001", "0.001", "0.01", "0.1", "1.0", "10.0", "+Inf")
        ]
        assert buckets == sorted(buckets) and buckets[-1] == 4
        assert total(samples, "raydo_event_duration_seconds_sum", kind="rpc") > 0
        # a was evicted after its last event; b is still in memory.
        assert total(samples, "raydo_activations_total", binding="COUNTER") == 2
        assert total(samples, "raydo_evictions_total", host=host_a) == 1
        assert total(samples, "raydo_live_objects", binding="COUNTER") == 1
        assert total(samples, "raydo_live_objects", host=host_b) == 1
        assert total(samples, "raydo_mailbox_depth") == 0
        # The gateway's own requests, by method and status.
        assert total(samples, "raydo_http_requests_total", method="POST", status="200") == 4
        assert total(samples, "raydo_http_requests_total", method="GET", status="200") == 1
        assert total(samples, "raydo_http_requests_total", method="GET", status="404") == 1
        assert total(samples, "raydo_http_request_duration_seconds_count") == 6
        # The gateway process's own resource metrics come along.
        assert total(samples, "process_resident_memory_bytes") > 0


async def test_the_endpoint_listens_on_loopback_only(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("counter"), metrics=True) as app:
        endpoint = app.gateway.metrics_endpoint
        assert endpoint is not None and endpoint.host == "127.0.0.1"
        assert app.metrics_url == f"http://127.0.0.1:{endpoint.port}/metrics"
        listening = [
            c.laddr
            for c in psutil.Process().net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == endpoint.port
        ]
        assert [addr.ip for addr in listening] == ["127.0.0.1"]
        # Hostile requests get an answer, not a crash: the next scrape still works.
        async with httpx.AsyncClient(timeout=30) as client:
            odd = await client.get(app.metrics_url + "?name[]=" + "x" * 5000)
            assert odd.status_code == 200
            posted = await client.post(app.metrics_url, content=b"\x00" * 100_000)
            assert posted.status_code in (200, 405)
        assert total(await scrape(app), "raydo_host_up") == 2
    # Stopping the app closes the endpoint.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=5)


async def test_no_endpoint_unless_asked(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("counter")) as app:
        assert app.gateway.metrics_endpoint is None
        with pytest.raises(RuntimeError, match="metrics=True"):
            _ = app.metrics_url


async def test_overloads_and_mailbox_depth(app_copy: Callable[[str], Path]) -> None:
    """The probe's mailbox holds 20 events: the rest of a burst is refused, and counted."""

    async with start_app(app_copy("probe"), metrics=True) as app:
        stub = app.env.PROBE.get_by_name("busy")
        results = await asyncio.gather(*(stub.value() for _ in range(50)), return_exceptions=True)
        refused = sum(isinstance(r, Overloaded) for r in results)
        assert 0 < refused < 50
        samples = await scrape(app)
        assert total(samples, "raydo_overloads_total", binding="PROBE") == refused
        assert total(samples, "raydo_events_total", kind="rpc") == 50 - refused

        # One long call holds the object; five more wait in its mailbox.
        sleeper = asyncio.ensure_future(stub.sleep(60))
        waiting = [asyncio.ensure_future(stub.value()) for _ in range(5)]
        samples = await scrape_until(
            app, lambda s: total(s, "raydo_mailbox_depth", binding="PROBE") == 5
        )
        assert total(samples, "raydo_mailbox_depth_max", binding="PROBE") == 5
        for task in (sleeper, *waiting):
            task.cancel()
        await asyncio.gather(sleeper, *waiting, return_exceptions=True)


async def test_websockets_per_binding(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("rooms"), metrics=True) as app:
        async with app.websocket("/room/r") as one, app.websocket("/room/r") as two:
            await one.send("broadcast hi")
            assert await one.recv() == "hi"
            assert await two.recv() == "hi"
            samples = await scrape(app)
            assert total(samples, "raydo_websockets_open", binding="ROOM") == 2
            assert total(samples, "raydo_websockets_opened_total", binding="ROOM") == 2
            received = "raydo_websocket_messages_received_total"
            assert total(samples, received, binding="ROOM") == 1
            assert total(samples, "raydo_websocket_sends_total", binding="ROOM") == 2
            assert total(samples, "raydo_events_total", binding="ROOM", kind="fetch") == 2
            assert total(samples, "raydo_events_total", kind="ws_message") == 1
        samples = await scrape_until(
            app, lambda s: total(s, "raydo_events_total", kind="ws_close") == 2
        )
        assert total(samples, "raydo_websockets_open", binding="ROOM") == 0
        assert total(samples, "raydo_websockets_opened_total", binding="ROOM") == 2


async def test_alarm_runs_and_retries(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("alarms"), metrics=True) as app:
        clock = app.env.CLOCK.get_by_name("c")
        await clock.set_in(60_000)
        assert await app.run_alarm("CLOCK", "c")
        samples = await scrape(app)
        assert total(samples, "raydo_alarm_runs_total", binding="CLOCK") == 1
        assert total(samples, "raydo_alarm_retries_total") == 0

        # An alarm that fails once is retried (after about 2 s): counted when scheduled.
        failing = app.env.CLOCK.get_by_name("f")
        await failing.plan(failures=1)
        await failing.set_in(0)
        samples = await scrape_until(
            app, lambda s: total(s, "raydo_alarm_retries_total", binding="CLOCK") == 1
        )
        assert total(samples, "raydo_event_errors_total", kind="alarm") == 1
        assert total(samples, "raydo_resets_total", binding="CLOCK") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metrics-port", "abc"], "'abc' is not a port number"),
        (["--metrics-port", "-1"], "outside 1-65535"),
        (["--metrics-port", "0"], "outside 1-65535"),
        (["--metrics-port", "65536"], "outside 1-65535"),
        (["--metrics-port", "9" * 400], "outside 1-65535"),
        (["--metrics-host", "localhost; rm -rf /"], "is not an IP address"),
        (["--log-format", "xml"], "invalid choice"),
    ],
)
def test_bad_options_are_clear_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from raydo.gateway.cli import main

    for command in (["dev"], ["serve", "--address", "127.0.0.1:1"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, *argv])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


@pytest.fixture
def restore_logging() -> Iterator[None]:
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_a_taken_metrics_port_is_a_clear_error(
    app_copy: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from raydo.gateway.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["dev", str(app_copy("counter")), "--metrics-port", str(port)])
    assert code == 2
    assert f"--metrics-port {port} on 127.0.0.1 cannot be used" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
def test_a_taken_port_of_the_workers_range_is_a_clear_error() -> None:
    # serve --workers 2 --metrics-port P gives the second worker P + 1: taken, it is the
    # same clear error as P taken, before anything starts (not a worker without metrics).
    import argparse
    import socket

    from raydo.gateway import cli_observe
    from raydo.gateway.runtime import AppLoadError
    from tests.cluster import free_port_run

    port = free_port_run(2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        args = argparse.Namespace(metrics_port=port, metrics_host="127.0.0.1", log_format="text")
        with pytest.raises(AppLoadError) as refused:
            cli_observe.setup(args, ports=2)
        assert str(refused.value).startswith(
            f"--metrics-port {port} on 127.0.0.1 cannot be used (port {port + 1}, for worker 2):"
        )
        # One worker needs only the first port.
        assert cli_observe.setup(args, ports=1) is not None
    # Past the last port there is none for the last worker.
    args = argparse.Namespace(metrics_port=65535, metrics_host="127.0.0.1", log_format="text")
    with pytest.raises(AppLoadError, match=r"\(port 65536, for worker 2\): past port 65535"):
        cli_observe.setup(args, ports=2)


@pytest.mark.usefixtures("restore_logging")
def test_an_unknown_traces_exporter_is_a_clear_error(
    app_copy: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from raydo.gateway.cli import main

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
    assert main(["dev", str(app_copy("counter"))]) == 2
    assert "unknown traces exporter 'carrier-pigeon'" in capsys.readouterr().err


@pytest.mark.ray
def test_serve_on_ray_reports_every_host(
    gateway: Callable[..., Server], app_copy: Callable[[str], Path]
) -> None:
    """``raydo serve --metrics-port``: hosts in Ray actors are asked for their counters."""
    from tests.cluster import free_port

    port = free_port()
    server = gateway(app_copy("counter"), args=["--metrics-port", str(port)])
    for name in ("a", "b", "c", "a"):
        assert httpx.post(f"{server.url}/counter/{name}/increment", timeout=30).status_code == 200
    url = f"http://127.0.0.1:{port}/metrics"
    samples = parse(httpx.get(url, timeout=30).text)
    assert {s["host"] for s in series(samples, "raydo_host_up")} == {
        "COUNTER/shard/0",
        "COUNTER/shard/1",
    }
    assert total(samples, "raydo_host_up") == 2
    assert total(samples, "raydo_events_total", binding="COUNTER", kind="rpc") >= 4
    assert total(samples, "raydo_live_objects", binding="COUNTER") == 3
    assert total(samples, "raydo_activations_total", binding="COUNTER") == 3
    assert total(samples, "raydo_http_requests_total", method="POST", status="200") == 4
    # Only on loopback, and by the gateway process itself.
    assert server.proc is not None
    listening = [
        c.laddr.ip
        for c in psutil.Process(server.proc.pid).net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]
    assert listening == ["127.0.0.1"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{_outside_address()}:{port}/metrics", timeout=5)


def _outside_address() -> str:
    """An address of this machine other than loopback (what another machine would dial)."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family.name == "AF_INET" and not address.address.startswith("127."):
                return str(address.address)
    pytest.skip("no non-loopback IPv4 address on this machine")


@pytest.mark.ray
def test_serve_workers_take_a_port_each_and_count_hosts_once(
    gateway: Callable[..., Server], app_copy: Callable[[str], Path]
) -> None:
    """``--workers 2``: ports PORT and PORT+1, one per worker; only one reports the hosts."""
    from tests.cluster import free_port_run

    port = free_port_run(2)  # PORT + 1 free too (once it was taken: the second worker had none)
    server = gateway(app_copy("counter"), workers=2, args=["--metrics-port", str(port)])
    with httpx.Client(timeout=30) as client:
        # the server is ready when one worker answers; the other may still be starting
        for p in (port, port + 1):
            wait_for_metrics(client, f"http://127.0.0.1:{p}/metrics")
        for n in range(20):  # new connections: the kernel spreads them over the workers
            reply = client.post(
                f"{server.url}/counter/c{n}/increment", headers={"connection": "close"}
            )
            assert reply.status_code == 200
        scrapes = [
            parse(client.get(f"http://127.0.0.1:{p}/metrics").text) for p in (port, port + 1)
        ]
    with_hosts = [s for s in scrapes if series(s, "raydo_host_up")]
    assert len(with_hosts) == 1
    assert total(with_hosts[0], "raydo_host_up") == 2
    assert total(with_hosts[0], "raydo_events_total", kind="rpc") == 20
    requests = sum(total(s, "raydo_http_requests_total", method="POST") for s in scrapes)
    assert requests == 20
