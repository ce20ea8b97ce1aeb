"""uvicorn's WebSocket protocol, able to hand an accepted socket over to raydo.

Under plain ASGI a WebSocket lives as long as the app's call that accepted it: the task, every
middleware frame, the route's frame, the scope with all its headers and a receive queue stay
in memory while the socket sits idle (about 26 KiB a socket, measured). A hibernating room
needs none of that: raydo's gateway only has to move frames between the client and the
object's host.

So this protocol (uvicorn's sans-I/O one, on the ``websockets`` library's parser) offers the
app the ``raydo.detach`` scope extension (the contract is :mod:`actors.websockets.detach`;
this class is a :class:`~actors.websockets.DetachedConnection`). What happens, in order:

1. The upgrade runs as ASGI: the app routes it, the object accepts it, the app sends
   ``websocket.accept``.
2. raydo's gateway calls ``detach(sink)``; from then on each message goes straight to
   ``sink.message(data)`` and the end of the socket to ``sink.closed(code, reason, clean)``,
   exactly once. The protocol forgets the scope, the request and the receive queue.
3. The app's call returns; the connection stays open, held only by the transport, this
   protocol and the sink.
4. Once ready, raydo calls :meth:`release`, which hands over what arrived before the
   detach. It writes with :meth:`send_message`, :meth:`close_socket` and :meth:`abort`,
   and reads ``writable_now``; ``sink.drain()`` is called when a paused transport can take
   more.

Apps that never detach (any other WebSocket route) get uvicorn's behaviour unchanged, but
for one bound on every socket: the pongs answering a client's pings are written even when
the client reads nothing, so those written while the transport is full are counted, and past
``websocket_control_bytes`` the client is sent a Close with 1008, its further pings go
unanswered, and it is cut if it does not answer the Close within uvicorn's close timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from raydo.actors.websockets import DETACH_EXTENSION, SocketSink

from ._http_protocol import _warn as warn_rate_limited
from ._http_protocol import limits_of

LOST = (1006, "connection lost without a Close frame")
UNREAD_CONTROL = 1008
UNREAD_REASON = "control frames unread (limit websocket_control_bytes)"


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol plus :meth:`detach` (see the module's text)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sink: SocketSink | None = None
        self._held: list[str | bytes] = []
        self._reported = False
        self._control_limit = limits_of(self.app).websocket_control_bytes
        self._unread_control = 0  # pong bytes written since the transport last drained

    # Control frames a client does not read.

    def handle_ping(self) -> None:
        output = b"".join(self.conn.data_to_send())
        if self.close_sent:
            return  # closing: its pings are read (so it can take the Close) but not answered
        if not self.writable.is_set():  # the transport is full: the client is not reading
            self._unread_control += len(output)
            if self._unread_control > self._control_limit:
                self._cut_unread()
                return
        self.transport.write(output)

    def _cut_unread(self) -> None:
        limit = self._control_limit
        warn_rate_limited(
            UNREAD_CONTROL,
            f"closing a WebSocket: its client left over {limit} bytes of pongs unread"
            " (limit websocket_control_bytes)",
            self.client,
        )
        if self.transport.is_closing():
            return
        self.conn.send_close(UNREAD_CONTROL, UNREAD_REASON)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        # Reading goes on until its Close reply (closing a socket with unread input would
        # reset it, losing the Close); one that never takes the Close is cut.
        self.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    # Handing over.

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.close_sent:
            scope["extensions"][DETACH_EXTENSION] = {"detach": self.detach}

    def detach(self, sink: SocketSink) -> LeanWebSocketProtocol | None:
        """Deliver this accepted socket's events to ``sink`` from now on; None if it is not
        open (then the app keeps reading it through ASGI)."""
        if not self.handshake_complete or self.close_sent or self.disconnected:
            return None
        self.sink = sink
        waiting, self.queue = self.queue, None  # type: ignore[assignment]
        # What arrived between the accept and now was queued for ASGI: kept, in order, for
        # :meth:`release` (the sink may not be ready for messages before ``detach`` returns).
        while not waiting.empty():
            message = waiting.get_nowait()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                self._held.append(text if text is not None else message.get("bytes") or b"")
        # The upgrade's request, response and scope are needed no more.
        for name in ("scope", "request", "response"):
            self.__dict__.pop(name, None)
        return self

    def release(self) -> None:
        """Hand the sink what arrived before :meth:`detach`, then read the client again."""
        held, self._held = self._held, []
        assert self.sink is not None
        for data in held:
            self.sink.message(data)
        self.resume_reading()

    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned %r.", result)
        if self.sink is None and self.close_timer is None:
            self.transport.close()

    # Reading, once detached.

    def send_receive_event_to_app(self) -> None:
        if self.sink is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.conn.send_close(1007, "invalid UTF-8")
                self.handle_parser_exception()
                return
            self.sink.message(text)
        else:
            self.sink.message(data)

    def pause_reading(self) -> None:
        if not self.read_paused and not self.transport.is_closing():
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()

    def handle_close(self, event: Frame) -> None:
        if self.sink is None or self.close_sent:
            super().handle_close(event)  # also completes a close raydo started
            return
        received = self.conn.close_rcvd
        code, reason = (received.code, received.reason) if received else (1005, "")
        self.close_sent = True
        self.transport.write(b"".join(self.conn.data_to_send()))  # the Close reply
        self.transport.close()
        self._report(code, reason, True)

    def handle_parser_exception(self) -> None:
        if self.sink is None:
            super().handle_parser_exception()
            return
        sent = self.conn.close_sent
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()
        self._report(sent.code if sent else 1002, sent.reason if sent else "", False)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sink is None:
            super().connection_lost(exc)
            return
        self.stop_keepalive()
        self.connections.discard(self)
        self.disconnected = True
        self.writable.set()
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        sent, received = self.conn.close_sent, self.conn.close_rcvd
        if sent is not None:  # raydo closed it; clean if the client answered
            self._report(sent.code, sent.reason, received is not None)
        else:
            self._report(*LOST, False)
        if exc is None:
            self.transport.close()

    def shutdown(self) -> None:
        if self.sink is None:
            super().shutdown()
            return
        self.stop_keepalive()
        if not self.close_sent:
            self.conn.send_close(1012, "server shutting down")
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        self.transport.close()

    def _report(self, code: int, reason: str, clean: bool) -> None:
        if not self._reported and self.sink is not None:
            self._reported = True
            self.sink.closed(code, reason, clean)

    # Writing, once detached.

    @property
    def writable_now(self) -> bool:
        """Whether the transport takes more without growing past its high-water mark."""
        # uvicorn's ``writable`` event follows the transport's pause_writing/resume_writing.
        return self.writable.is_set() and not self.close_sent and not self.disconnected

    def resume_writing(self) -> None:
        self._unread_control = 0
        super().resume_writing()
        if self.sink is not None:
            self.sink.drain()

    def send_message(self, data: str | bytes) -> None:
        """Send one message now (it waits in the transport's buffer if the client is slow)."""
        if self.close_sent or self.disconnected:
            return
        if isinstance(data, str):
            self.conn.send_text(data.encode())
        else:
            self.conn.send_binary(data)
        self.transport.write(b"".join(self.conn.data_to_send()))

    def close_socket(self, code: int, reason: str) -> None:
        """Start the closing handshake; the connection ends when the client answers, or after
        uvicorn's close timeout."""
        if self.close_sent or self.disconnected:
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.resume_reading()  # to read the client's Close reply
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def abort(self) -> None:
        """Cut the connection now (a client that never reads keeps even a closing one open)."""
        if not self.disconnected:
            self.transport.abort()

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count ``task`` among the server's, so a graceful shutdown waits for it."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
