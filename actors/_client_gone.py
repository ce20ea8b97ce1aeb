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


def departure(receive: Callable[[], Awaitable[Any]]) -> ClientGone:
    """What waits for an ASGI HTTP request's disconnect, given its ``receive`` once the body
    has been read (what arrives after the body is only the disconnect)."""

    async def gone() -> None:
        if (await receive()).get("type") != "http.disconnect":
            # Not a departure (a server that offers more after the body): watch no further.
            await asyncio.get_running_loop().create_future()

    return gone
