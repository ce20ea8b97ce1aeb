"""``await stub.fetch(websocket)``: hand a WebSocket upgrade to an object, then serve it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket

from .._http import reply_response, upgrade_request
from .._metrics import socket_counts
from .._payloads import FetchReply, SocketClose, SocketMessage, Upgrade
from .._spec import HostKey
from ..types import EventKind
from ._hub import SocketHub

Send = Callable[[EventKind, list[Any]], Awaitable[Any]]
"""Send an event with an encoded payload to the object; its reply payload."""


async def hand_over(
    websocket: WebSocket,
    hub: SocketHub,
    key: HostKey,
    object_hex: str,
    *,
    send_upgrade: Send,
    send: Send,
) -> None:
    """Hand the upgrade ``websocket`` to the object ``object_hex`` (on host ``key``), in order:

    1. reserve a socket id in ``hub`` and send the upgrade request, with that id and this
       gateway's, as a ``FETCH`` event (``send_upgrade``);
    2. an answer other than 101 (the object did not call ``ctx.accept_websocket``) reaches
       the client as that HTTP response, before any upgrade, and the id is released;
    3. on 101, the hub accepts the client and serves it (:meth:`SocketHub.serve`); each of
       its messages, and its end, goes to the object through ``send``.
    """
    sid = hub.new_sid(key, object_hex)
    request = upgrade_request(websocket.scope, Upgrade(sid, hub.gateway_id))
    try:
        reply = FetchReply.decode(await send_upgrade(EventKind.FETCH, request.encode()))
    except BaseException:
        hub.abandon(sid)
        raise
    if reply.status != 101:
        hub.abandon(sid)
        await websocket.send_denial_response(reply_response(reply))
        return
    counts = socket_counts(hub.counts, key.binding)
    counts.opened += 1

    async def send_event(event: SocketMessage | SocketClose) -> Any:
        if type(event) is SocketMessage:
            counts.messages_in += 1
            return await send(EventKind.WS_MESSAGE, event.encode())
        return await send(EventKind.WS_CLOSE, event.encode())

    auto = reply.auto_response
    del request, reply  # this frame lives as long as an ASGI-read socket: keep it light
    await hub.serve(websocket, sid, key, object_hex, auto, send_event)
