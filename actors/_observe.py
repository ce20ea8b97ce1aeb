"""Logging and tracing settings a gateway hands its host processes, inside the spec.

The gateway process configures itself from the CLI and the environment; hosts in Ray actors
run elsewhere, so the gateway puts the same settings in ``RuntimeSpec.extra`` and each host
process applies them before it makes its host.
"""

from __future__ import annotations

from . import _logs, _tracing

LOG_FORMAT = "log_format"
TRACES_EXPORTER = "traces_exporter"
SERVICE_NAME = "service_name"


def apply(extra: dict[str, str]) -> None:
    """Configure this (host) process's logging and tracing as ``extra`` says; a setting
    absent leaves the process as it was."""
    log_format = extra.get(LOG_FORMAT)
    if log_format is not None:
        _logs.configure(log_format)
    exporter = extra.get(TRACES_EXPORTER)
    if exporter is not None:
        _tracing.configure(exporter, extra.get(SERVICE_NAME, "raydo"))
