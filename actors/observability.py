"""Logging, tracing and counting, as the gateway process sets them up and uses them.

Hosts configure themselves from the settings the gateway puts in their spec
(:func:`host_settings`); the gateway process configures itself from its CLI options and the
environment with the same functions, so one process and its hosts log and trace alike.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from . import _observe, _tracing
from ._logs import LOG_FORMATS
from ._logs import configure as configure_logging
from ._logs import current_format as log_format
from ._metrics import Histogram
from ._tracing import configure as configure_tracing
from ._tracing import enabled as tracing_enabled
from ._tracing import exporter_from_environment as traces_exporter_from_environment

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


def tracer() -> Tracer | None:
    """The tracer this process makes spans with, or None while tracing is off."""
    return _tracing._tracer


def service_name() -> str:
    """The service name spans carry: ``OTEL_SERVICE_NAME``, or "raydo"."""
    return os.environ.get("OTEL_SERVICE_NAME", "raydo")


def host_settings() -> dict[str, str]:
    """What hosts apply in their own processes: this process's log format and exporter."""
    settings = {_observe.LOG_FORMAT: log_format()}
    exporter = traces_exporter_from_environment()
    if exporter is not None:
        settings[_observe.TRACES_EXPORTER] = exporter
        settings[_observe.SERVICE_NAME] = service_name()
    return settings


__all__ = [
    "LOG_FORMATS",
    "Histogram",
    "configure_logging",
    "configure_tracing",
    "host_settings",
    "log_format",
    "service_name",
    "tracer",
    "traces_exporter_from_environment",
    "tracing_enabled",
]
