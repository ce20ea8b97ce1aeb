"""Log records that say which object they came from.

Inside a turn, every record (raydo's own and the object's, from any
``logging.getLogger(...)``) gets ``binding`` and ``object_id`` attributes, and
``object_name`` when the object was reached by name; outside a turn they are None.
:func:`configure` installs one handler on the root logger that adds them and writes either
text lines or JSON lines (one object per record: ``time``, ``level``, ``logger``,
``message``, ``binding``, ``object_id``, ``object_name``, ``process``, and ``exception``
when there is one, plus the record's own ``fields`` when it was logged with
``extra={"fields": {...}}``, as the access log does).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from ._turn import current_turn

#: What :func:`configure` accepts.
LOG_FORMATS = ("text", "json")

_format: str | None = None

_TEXT = "%(asctime)s %(levelname)s %(name)s%(object_context)s: %(message)s"


class ObjectContext(logging.Filter):
    """Adds ``binding``, ``object_id`` and ``object_name`` from the turn that is running."""

    def filter(self, record: logging.LogRecord) -> bool:
        turn = current_turn.get()
        object_id = None if turn is None else turn.object_id
        if object_id is None:
            record.binding = record.object_id = record.object_name = None
            record.object_context = ""
        else:
            record.binding = object_id.namespace
            record.object_id = object_id.hex
            record.object_name = object_id.name
            record.object_context = f" [{object_id.namespace} {object_id.hex[:16]}]"
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "binding": getattr(record, "binding", None),
            "object_id": getattr(record, "object_id", None),
            "object_name": getattr(record, "object_name", None),
            "process": record.process,
        }
        fields = getattr(record, "fields", None)  # a record's own fields: ``extra={"fields": ...}``
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _RaydoHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs (marked, so configuring again replaces it)."""


def configure(log_format: str = "text", level: int | str = logging.INFO) -> None:
    """Send every log record of this process to stderr as ``log_format`` lines, with the
    object it came from. Replaces a handler an earlier call installed; others stay."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _RaydoHandler)]:
        root.removeHandler(old)
    handler = _RaydoHandler(sys.stderr)
    handler.addFilter(ObjectContext())
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(_TEXT))
    root.addHandler(handler)
    root.setLevel(level)
    global _format
    _format = log_format


def current_format() -> str:
    """The format :func:`configure` last installed ("text" if never called)."""
    return _format or "text"
