"""``WebSocketPair`` and the socket a Durable Object holds, with the platform's names.

The pattern the platform documents::

    client, server = WebSocketPair()        # or WebSocketPair.new().object_values()
    self.ctx.acceptWebSocket(server, ["tag"])
    return Response(None, status=101, web_socket=client)

maps onto raydo's hibernating sockets: ``acceptWebSocket`` accepts the upgrade request the
object's ``fetch`` is handling (``ctx.accept_websocket``) and binds the server end to the
socket it made; the 101 response with the client end becomes that acceptance. The socket
itself lives in the gateway, as every raydo socket does. ``server.accept()`` (the platform's
non-hibernating API, with ``addEventListener``) is not offered: it would pin the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from raydo.actors.websockets import WebSocket as _Handle

_NOT_HIBERNATING = (
    "raydo offers the WebSocket Hibernation API only: accept the server end with"
    " self.ctx.acceptWebSocket(server) in a Durable Object and handle its events in"
    " webSocketMessage / webSocketClose / webSocketError"
)


class WebSocket:
    """One end of a :class:`WebSocketPair`, or a socket an object accepted: ``send``,
    ``close``, ``serializeAttachment``, ``deserializeAttachment``."""

    def __init__(self, handle: _Handle | None = None, *, client: bool = False) -> None:
        self._handle = handle
        self._client = client
        self._peer: WebSocket | None = None
        self._accepted: Any = None  # the 101 response raydo made when the peer was accepted

    def _socket(self) -> _Handle:
        if self._handle is None:
            if self._client:
                raise TypeError(
                    "this is the client end of a WebSocketPair: return it in"
                    " Response(None, status=101, web_socket=client)"
                )
            raise TypeError("this WebSocket is not accepted yet: " + _NOT_HIBERNATING)
        return self._handle

    def send(self, message: str | bytes) -> None:
        """Send a text or binary message (it leaves once the event's writes commit)."""
        self._socket().send(message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._socket().close(code, reason)

    def serializeAttachment(self, value: Any) -> None:
        """Keep ``value`` with the socket, across hibernation (at most 16 KiB encoded)."""
        self._socket().serialize_attachment(value)

    def deserializeAttachment(self) -> Any:
        return self._socket().deserialize_attachment()

    serialize_attachment = serializeAttachment
    deserialize_attachment = deserializeAttachment

    def accept(self) -> None:
        raise NotImplementedError("WebSocket.accept() is not supported: " + _NOT_HIBERNATING)

    def addEventListener(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "WebSocket.addEventListener() is not supported: " + _NOT_HIBERNATING
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WebSocket):
            if self._handle is None or other._handle is None:
                return self is other
            return self._handle == other._handle
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._handle) if self._handle is not None else id(self)

    def __repr__(self) -> str:
        return f"WebSocket({self._handle.sid if self._handle is not None else 'unaccepted'})"


class WebSocketPair:
    """Two ends of a WebSocket: ``client, server = WebSocketPair()``; ``pair[0]`` is the
    client, ``pair[1]`` the server (``WebSocketPair.new().object_values()`` as in Pyodide)."""

    def __init__(self) -> None:
        self.client = WebSocket(client=True)
        self.server = WebSocket()
        self.client._peer = self.server
        self.server._peer = self.client

    @classmethod
    def new(cls) -> WebSocketPair:
        return cls()

    def object_values(self) -> tuple[WebSocket, WebSocket]:
        return (self.client, self.server)

    def __iter__(self) -> Iterator[WebSocket]:
        return iter((self.client, self.server))

    def __getitem__(self, index: int) -> WebSocket:
        return (self.client, self.server)[index]

    def __len__(self) -> int:
        return 2


class WebSocketRequestResponsePair:
    """The pair ``ctx.setWebSocketAutoResponse`` takes: a text request and its answer."""

    def __init__(self, request: str, response: str) -> None:
        self.request = request
        self.response = response

    @classmethod
    def new(cls, request: str, response: str) -> WebSocketRequestResponsePair:
        return cls(request, response)


def face(handle: _Handle) -> WebSocket:
    """The platform-shaped socket for a raydo socket handle."""
    return WebSocket(handle)
