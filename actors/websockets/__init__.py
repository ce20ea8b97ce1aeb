"""WebSockets, in one place: the client sockets a gateway holds, the object's view of them,
and a host's links to the gateways that hold its objects' sockets.

The life of one socket, by module:

1. ``await stub.fetch(websocket)`` (:mod:`._upgrade`) reserves a socket id in this process's
   :class:`SocketHub` and sends the upgrade to the object as a ``FETCH`` with that id.
2. In its host, ``ctx.accept_websocket`` records the socket (:mod:`._object_view`:
   :class:`ObjectSockets`, the object's :class:`WebSocket` handles, their records in the
   object's file) and answers 101; the host's :class:`GatewayLinks` (:mod:`._links`) learns
   which gateway holds it.
3. The hub accepts the client and keeps a :class:`ClientSocket` (:mod:`._client`): a
   :class:`DetachedSocket` when the server can take it out of ASGI (:mod:`.detach`, the
   contract; ``gateway._ws_protocol`` the server), else an :class:`AsgiSocket`. Its life is a
   :class:`SocketState`. Each client message becomes a ``WS_MESSAGE`` event, its end one
   ``WS_CLOSE``.
4. What the object sends leaves after its event commits, as pushes to the holding gateway,
   where the hub routes them to the sockets.

The server half of the detach (a uvicorn protocol subclass) stays in
``gateway/_ws_protocol.py``: it is server machinery, actors must not import gateway, and it
needs only this package's public face (:mod:`.detach`).

The socket has one name on its way: the client's socket is a ``ClientSocket`` in the
gateway, known everywhere by its ``sid``; inside the object it is a ``WebSocket`` handle
over its ``SocketRecord``.
"""

from ._asgi import AsgiSocket
from ._client import ClientSocket
from ._detached import DetachedSocket
from ._host_side import HostSockets
from ._hub import SocketHub
from ._links import GatewayLinks
from ._object_view import (
    UPGRADE_SCOPE_KEY,
    ObjectSockets,
    WebSocket,
    WebSocketAccepted,
    accept_response,
)
from ._state import SocketState, SocketStateError
from ._upgrade import hand_over
from .detach import DETACH_EXTENSION, DetachedConnection, SocketSink

__all__ = [
    "DETACH_EXTENSION",
    "UPGRADE_SCOPE_KEY",
    "AsgiSocket",
    "ClientSocket",
    "DetachedConnection",
    "DetachedSocket",
    "GatewayLinks",
    "HostSockets",
    "ObjectSockets",
    "SocketHub",
    "SocketSink",
    "SocketState",
    "SocketStateError",
    "WebSocket",
    "WebSocketAccepted",
    "accept_response",
    "hand_over",
]
