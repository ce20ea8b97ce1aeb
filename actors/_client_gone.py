"""The HTTP client an event is for, which may leave before its event leaves the gateway.

A gateway handler's ``stub.fetch(request)`` runs with :data:`client_gone` set to a coroutine
function that returns once the request's client has disconnected. A host link that cannot
write the event at once (its host is not reading) watches it, and takes the event's unsent
frame back when the client leaves first, so what a departed client sent stops costing the
gateway memory. Inside an object's turn it is never set: a request an object forwards is
not a client's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

ClientGone = Callable[[], Awaitable[None]]

client_gone: ContextVar[ClientGone | None] = ContextVar("raydo_client_gone", default=None)

CLIENT_LEFT_EXTENSION = "raydo.client_left"
"""A server that can tell at once when an HTTP request's client disconnects puts an
``asyncio.Event`` under this key of the request scope's ``extensions``, set when it does (the
gateway's own HTTP protocol does). A request body streaming to a host that does not read it
is then abandoned as soon as its client leaves, not after ``stream_idle_seconds``: the ASGI
``http.disconnect`` reaches only a reader of ``receive()``, and such a body's reader waits."""


def client_left_event(scope: Any) -> asyncio.Event | None:
    """The scope's :data:`CLIENT_LEFT_EXTENSION` event, if its server gives one."""
    left = scope.get("extensions", {}).get(CLIENT_LEFT_EXTENSION)
    return left if isinstance(left, asyncio.Event) else None


def departure(receive: Callable[[], Awaitable[Any]]) -> ClientGone:
    """What waits for an ASGI HTTP request's disconnect, given its ``receive`` once the body
    has been read (what arrives after the body is only the disconnect)."""

    async def gone() -> None:
        if (await receive()).get("type") != "http.disconnect":
            # Not a departure (a server that offers more after the body): watch no further.
            await asyncio.get_running_loop().create_future()

    return gone
