"""uvicorn's httptools protocol with bounds at the front door.

uvicorn leaves a request's head unbounded: httptools accumulates a header value of any size
before the app sees it (a 128 MiB header took 15 s of the event loop), a connection that never
finishes its head keeps its memory and its file descriptor forever, and nothing caps how many
connections one process holds. This protocol adds, per gateway process, each bound one of the
``[limits]`` of raydo.toml:

- ``http_target_bytes``: a longer request target (path and query) is answered 414;
- ``http_header_bytes``: a request line and headers together longer than this are answered
  431, counted as bytes arrive, so the parser never holds more than one read beyond it;
- ``http_header_seconds``: a connection whose request head is not complete this long after
  it opened (or after its previous response) is answered 408 and closed;
- ``http_body_idle_seconds``: a request body that stops arriving for this long, while the app
  is ready for more, ends the connection (the app's ``receive()`` sees a disconnect);
- ``connections``: past this many open connections (HTTP and WebSocket), a new one is answered
  503 and closed before anything of it is read.

Each refusal writes a small JSON body, closes the connection, and is logged at warning level
(rate-limited, so a flood cannot fill the log).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from raydo.actors import CLIENT_LEFT_EXTENSION
from raydo.storage.limits import DEFAULT_LIMITS, Limits

log = logging.getLogger("raydo.gateway")

_REASONS = {
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
_WARN_EVERY_S = 10.0
_LINGER_S = 2.0
_last_warning: dict[int, float] = {}


def limits_of(app: Any) -> Limits:
    """The limits of the raydo gateway an ASGI app is, or wraps (uvicorn wraps it in
    middleware such as its proxy-headers one, each holding the next as ``.app``)."""
    for _ in range(16):
        limits = getattr(app, "http_limits", None)
        if isinstance(limits, Limits):
            return limits
        app = getattr(app, "app", None)
        if app is None:
            break
    return DEFAULT_LIMITS


def _warn(status: int, message: str, client: Any) -> None:
    now = time.monotonic()
    if now - _last_warning.get(status, -_WARN_EVERY_S) >= _WARN_EVERY_S:
        _last_warning[status] = now
        log.warning("%s (client %s; further ones for %.0f s not logged)", message, client, 10)


def _nothing() -> None:
    pass


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the bounds of the module's text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits_of(self.app)
        self._in_head = True  # waiting for (the rest of) a request line and headers
        self._head_bytes = 0
        # One deadline at a time (a stalled head, or a stalled body), kept lazily: arming
        # and disarming per request only write ``_deadline``; the timer is made when none is
        # pending and, when it fires early, re-armed for what is left. A timer made and
        # cancelled per request cost the gateway about 4% of its CPU per request.
        self._deadline: float | None = None
        self._on_deadline: Callable[[], None] = _nothing
        self._timer: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._parsed_head = 0  # bytes of the current head's headers, as parsed
        self._refused = False  # answered and closing: nothing more of it is parsed or run
        self._client_left: asyncio.Event | None = None  # the current request's, set on loss

    # ---- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.connections:
            self._refuse(
                503,
                f"the gateway holds {self._limits.connections} connections already"
                " (limit connections)",
            )
            return
        self._arm(self._limits.http_header_seconds, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._client_left is not None:
            self._client_left.set()
        self._disarm()
        for timer in (self._timer, self._linger):
            if timer is not None:
                timer.cancel()
        self._timer = self._linger = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._refused:
            return
        # Still in the head after this read: everything counted so far is head.
        if self._in_head and self._head_bytes > self._limits.http_header_bytes:
            self._refuse_head()
        elif not self._in_head and self.cycle is not None and self.cycle.more_body:
            self._arm(self._limits.http_body_idle_seconds, self._body_timed_out)

    # ---- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._parsed_head = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self._limits.http_target_bytes and not self._refused:
            self._refuse(
                414,
                f"the request target exceeds {self._limits.http_target_bytes} bytes"
                " (limit http_target_bytes)",
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        # A head that arrived whole in one read is measured here, one that never ends in
        # data_received.
        self._parsed_head += len(name) + len(value) + 4
        if self._parsed_head + len(self.url) > self._limits.http_header_bytes:
            self._refuse_head()
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        self._head_bytes = 0
        self._disarm()
        # Before the app's task starts (super() makes it): a body streaming to a host that
        # does not read it is abandoned as soon as the client goes (CLIENT_LEFT_EXTENSION).
        self._client_left = asyncio.Event()
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[CLIENT_LEFT_EXTENSION] = self._client_left
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = self.cycle
        # Answered before its body was all in (an upload refused midway): the rest of the body
        # is still to come, and is body (uvicorn drops it), not the next request's head.
        if not self.transport.is_closing() and (cycle is None or not cycle.more_body):
            self._in_head = True
            # uvicorn's keep-alive timer closes an idle connection; this one bounds a
            # started but unfinished head.
            self._arm(self._limits.http_header_seconds, self._head_timed_out)

    # ---- timers --------------------------------------------------------------------------

    def _arm(self, seconds: float, handler: Callable[[], None]) -> None:
        """Call ``handler`` in ``seconds`` unless disarmed or armed again before."""
        self._deadline = self.loop.time() + seconds
        self._on_deadline = handler
        timer = self._timer
        if timer is None or timer.when() > self._deadline:
            if timer is not None:  # a later deadline's timer: this one must come first
                timer.cancel()
            self._timer = self.loop.call_at(self._deadline, self._deadline_reached)

    def _disarm(self) -> None:
        self._deadline = None

    def _deadline_reached(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        if self.loop.time() < deadline:  # armed again since this timer was made
            self._timer = self.loop.call_at(deadline, self._deadline_reached)
            return
        self._deadline = None
        self._on_deadline()

    def _head_timed_out(self) -> None:
        if self._in_head and not self.transport.is_closing():
            # A connection kept alive between requests and silent is uvicorn's keep-alive
            # matter; one that started a head and stalled is ours. Both end here.
            self._refuse(
                408,
                f"the request's head did not arrive within {self._limits.http_header_seconds}"
                " s (limit http_header_seconds)",
                respond=self._head_bytes > 0,
            )

    def _body_timed_out(self) -> None:
        cycle = self.cycle
        if cycle is None or not cycle.more_body or self.transport.is_closing():
            return
        if self.flow.read_paused:  # the app has not read what came: not the client's fault
            self._arm(self._limits.http_body_idle_seconds, self._body_timed_out)
            return
        _warn(408, "a request body stalled (limit http_body_idle_seconds)", self.client)
        self.transport.close()  # the app's receive() sees http.disconnect

    # ---- refusing --------------------------------------------------------------------------

    def _refuse_head(self) -> None:
        self._refuse(
            431,
            f"the request's line and headers exceed {self._limits.http_header_bytes}"
            " bytes (limit http_header_bytes)",
        )

    def _refuse(self, status: int, message: str, *, respond: bool = True) -> None:
        self._refused = True
        self._disarm()
        _warn(status, message, self.client)
        if self.transport.is_closing():
            return
        if respond and (self.cycle is None or self.cycle.response_complete):
            body = json.dumps({"error": message, "status": status}).encode()
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                "content-type: application/json\r\n"
                f"content-length: {len(body)}\r\n"
                "connection: close\r\n\r\n"
            ).encode()
            self.transport.write(head + body)
        if respond and self.transport.can_write_eof():
            # A lingering close: the client may still be sending (the rest of a huge header,
            # say); closing now would reset the connection and lose the answer on its way.
            # Reads are dropped from here on, for a bounded time.
            self.transport.write_eof()
            self._linger = self.loop.call_later(_LINGER_S, self.transport.close)
        else:
            self.transport.close()
