"""The contract between raydo and a server that can take an accepted socket out of ASGI.

A server offers ``scope["extensions"][DETACH_EXTENSION] = {"detach": detach}``
(``gateway._ws_protocol.LeanWebSocketProtocol`` does). After the accept, raydo calls
``detach(sink)``: from then on the server reports the socket's messages and its end to
``sink`` (a :class:`SocketSink`), and raydo writes through the returned
:class:`DetachedConnection`; ``detach`` returns None when the socket is no longer open, and
raydo keeps reading it through ASGI.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

#: The scope extension a server offers to take an accepted socket out of ASGI.
DETACH_EXTENSION = "raydo.detach"


class SocketSink(Protocol):
    """Where a detached socket's events go."""

    def message(self, data: str | bytes) -> None:
        """A client message (only after :meth:`DetachedConnection.release`)."""

    def closed(self, code: int, reason: str, clean: bool) -> None:
        """The connection ended; reported exactly once."""

    def drain(self) -> None:
        """The connection takes writes again after it was full."""


class DetachedConnection(Protocol):
    """A socket taken out of ASGI, as raydo writes to it."""

    @property
    def writable_now(self) -> bool:
        """Whether a write now stays under the transport's high-water mark."""

    def send_message(self, data: str | bytes) -> None: ...

    def close_socket(self, code: int, reason: str) -> None:
        """Start the closing handshake."""

    def abort(self) -> None:
        """Cut the connection now."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count ``task`` among the server's, so a graceful shutdown waits for it."""

    def release(self) -> None:
        """Hand the sink what arrived before the detach, then read the client again."""
