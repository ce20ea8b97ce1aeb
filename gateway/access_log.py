"""``--access-log``: one log line per HTTP request, after its response has been sent.

A line says the method, the path, the status (``-`` when the client left before any response)
and the duration in milliseconds: ``GET /counter/a 200 1.3 ms`` as text, and the fields
``method``, ``path``, ``status`` and ``duration_ms`` in a JSON line (``--log-format json``).
The record goes to the ``raydo.access`` logger at INFO, so the process's log format applies;
uvicorn's own access log stays off (it would log the same request twice, without a duration).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("raydo.access")


async def log_request(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app`` for one HTTP request, then log it (an app that raises is logged as 500)."""
    started = time.perf_counter()
    status: int | None = None

    async def send_(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        await send(message)

    try:
        await app(scope, receive, send_)
    except BaseException:
        status = status or 500
        raise
    finally:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        path = scope.get("path", "")
        method = scope.get("method", "")
        log.info(
            "%s %s %s %.1f ms",
            method,
            path,
            "-" if status is None else status,
            duration_ms,
            extra={
                "fields": {
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                }
            },
        )
