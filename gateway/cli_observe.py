"""The metrics, logging and tracing options of ``raydo dev`` and ``raydo serve``.

``--metrics-port PORT`` serves Prometheus metrics on ``--metrics-host`` (127.0.0.1);
``--log-format text|json`` shapes every log line; tracing follows the standard
``OTEL_TRACES_EXPORTER`` variable. What happens, in order: the options are checked (a taken
port or an unknown exporter is an error before anything starts); this process configures its
logging and tracing; the gateway gets the metrics options, and its hosts the logging and
tracing settings (inside the spec). ``serve`` passes the same through environment variables
to its uvicorn workers, which apply them in :func:`gateway._worker.create_app`.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import socket
from typing import TYPE_CHECKING, Any

from raydo.actors import observability

from .metrics import MetricsOptions
from .runtime import AppLoadError

if TYPE_CHECKING:
    from .app import Gateway

# Environment variables that carry the options to ``serve``'s workers.
METRICS_PORT = "RAYDO_METRICS_PORT"
METRICS_HOST = "RAYDO_METRICS_HOST"
METRICS_PORTS = "RAYDO_METRICS_PORTS"
LOG_FORMAT = "RAYDO_LOG_FORMAT"
ACCESS_LOG = "RAYDO_ACCESS_LOG"


def _metrics_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 1-65535")
    return port


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def add_options(command: argparse.ArgumentParser) -> None:
    """Add the metrics and logging options to ``dev`` or ``serve``."""
    command.add_argument(
        "--metrics-port",
        type=_metrics_port,
        default=None,
        help="serve Prometheus metrics on this port (off unless given)",
    )
    command.add_argument(
        "--metrics-host",
        type=_address,
        default="127.0.0.1",
        help="interface of the metrics port (127.0.0.1)",
    )
    command.add_argument(
        "--log-format",
        choices=observability.LOG_FORMATS,
        default="text",
        help="log lines as text (the default) or JSON lines",
    )


def setup(args: argparse.Namespace, *, ports: int = 1) -> MetricsOptions | None:
    """Check the options and configure this process's logging and tracing; the metrics
    options for the gateway (None when off). ``AppLoadError`` for a mistake."""
    exporter = observability.traces_exporter_from_environment()
    try:
        observability.configure_logging(args.log_format)
        if exporter is not None:
            observability.configure_tracing(exporter, observability.service_name())
    except ValueError as exc:
        raise AppLoadError(f"{exc} (OTEL_TRACES_EXPORTER)") from None
    if args.metrics_port is None:
        return None
    options = MetricsOptions(port=args.metrics_port, host=args.metrics_host, ports=ports)
    _check_free(options)
    last = f"-{options.port + ports - 1}" if ports > 1 else ""
    print(f"raydo: metrics on {options.host} port {options.port}{last} (/metrics)", flush=True)
    return options


def _check_free(options: MetricsOptions) -> None:
    """A taken port is a clear error now rather than a failed start-up later: every port of
    the range, since ``serve --workers N`` gives worker k the port ``port + k``."""
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    for port in range(options.port, options.port + max(options.ports, 1)):
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((options.host, port))
            except (OSError, OverflowError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "past port 65535"
                worker = port - options.port + 1
                which = "" if worker == 1 else f" (port {port}, for worker {worker})"
                raise AppLoadError(
                    f"--metrics-port {options.port} on {options.host} cannot be used{which}: {why}"
                ) from None


def attach(
    gateway: Gateway, metrics: MetricsOptions | None, *, access_log: bool = False
) -> Gateway:
    """Give a gateway (before it starts) its metrics options, whether it logs every request
    (:mod:`gateway.access_log`), and its hosts' settings."""
    gateway.metrics_options = metrics
    gateway.access_log = access_log
    gateway.spec = dataclasses.replace(
        gateway.spec, extra={**gateway.spec.extra, **observability.host_settings()}
    )
    return gateway


def export(args: argparse.Namespace, metrics: MetricsOptions | None) -> None:
    """Hand the options to ``serve``'s worker processes."""
    os.environ[LOG_FORMAT] = args.log_format
    os.environ[ACCESS_LOG] = "1" if args.access_log else ""
    if metrics is not None:
        os.environ[METRICS_PORT] = str(metrics.port)
        os.environ[METRICS_HOST] = metrics.host
        os.environ[METRICS_PORTS] = str(metrics.ports)


def from_environment() -> MetricsOptions | None:
    """In a worker: configure logging and tracing as ``serve`` asked; its metrics options."""
    observability.configure_logging(os.environ.get(LOG_FORMAT, "text"))
    exporter = observability.traces_exporter_from_environment()
    if exporter is not None:
        observability.configure_tracing(exporter, observability.service_name())
    port = os.environ.get(METRICS_PORT)
    if port is None:
        return None
    return MetricsOptions(
        port=int(port),
        host=os.environ.get(METRICS_HOST, "127.0.0.1"),
        ports=int(os.environ.get(METRICS_PORTS, "1")),
    )


def access_log_from_environment() -> bool:
    """In a worker: whether ``serve`` was given ``--access-log``."""
    return bool(os.environ.get(ACCESS_LOG))


def uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """JSON lines: uvicorn's own records go through the root logger too."""
    return {"log_config": None} if args.log_format == "json" else {}
