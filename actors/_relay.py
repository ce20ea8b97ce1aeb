"""The caller's side of ``stub.fetch(request)``: a request relayed to an object, its body
streaming there when it is large or of unknown length, and the object's reply relayed back,
streaming when the object answers with a ``StreamingResponse``.

In order: the request becomes its record (its body inside when short and declared, else
streamed: a :class:`RequestPump` reads the client's body and writes it into the stream the
transport opens with the event, no faster than the object reads); the event goes out; then,
for a buffered reply, the pump stops and the reply is a plain ``Response``; for a streamed
reply, the caller gets a :class:`StreamedReply`, which sends each chunk to the client as it
arrives, and when the client leaves, cancels the stream (the object's generator is closed,
its ``finally`` runs and its event ends). Either way the pump is stopped and awaited before
the response is done with: every task here has an owner that waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from raydo.storage.limits import Limits

from ._client_gone import client_gone, client_left_event, departure
from ._errors import RaydoError, RemoteLimitExceeded, StreamBroken
from ._http import body_streams, reply_response, request_payload, streamed_request
from ._payloads import FetchReply
from ._streams import BODY_ALLOWANCE, BodyAllowance, BodySink, BodySource, CallerStreams
from .types import EventKind

log = logging.getLogger("raydo.streams")

SendEvent = Callable[[EventKind, Any, CallerStreams], Awaitable[Any]]


async def relay(
    send: SendEvent, request: Request, limits: Limits, *, from_client: bool
) -> StreamingResponse | Any:
    """Send ``request`` to an object's ``fetch`` with ``send`` and return its response (see
    the module's text). ``from_client``: the request is a client's (not one an object
    forwards), so a client that leaves before its event is sent takes the event back."""
    streamed = body_streams(request)
    if streamed:
        allowance = request.scope.get(BODY_ALLOWANCE)
        if isinstance(allowance, BodyAllowance):
            allowance.stream()  # the pump counts it against stream_bytes from here
        payload = streamed_request(request)
    else:
        payload = await request_payload(request, limits)
    streams = CallerStreams(sends_body=streamed)
    pump = RequestPump(request, streams, limits) if streamed else None
    gone = pump.gone if pump is not None else departure(request.receive)
    watched = client_gone.set(gone) if from_client else None
    try:
        raw = await send(EventKind.FETCH, payload.encode(), streams)
        reply = FetchReply.decode(raw)
    except BaseException:
        if pump is not None:
            await pump.stop()
        raise
    finally:
        if watched is not None:
            client_gone.reset(watched)
    if reply.body is not None:
        if pump is not None:  # the object's turn is over: it reads no more
            await pump.stop()
        return reply_response(reply)
    if streams.reply is None:  # a transport that lost the body's opening: say so
        if pump is not None:
            await pump.stop()
        raise StreamBroken("the object's reply streams, but its body never opened")
    return StreamedReply(reply, streams.reply, pump, gone)


class RequestPump:
    """Reads a client's request body and writes it into the stream to the object, as fast
    as the object reads it (at most ``stream_bytes``); its task is owned by the relay, which
    stops it once the object's turn no longer needs the body."""

    def __init__(self, request: Request, streams: CallerStreams, limits: Limits) -> None:
        self._request = request
        self._streams = streams
        self._most = limits.stream_bytes
        self.client_left = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        assert self._streams.request_sink is not None
        sink = await self._streams.request_sink  # once the transport sent the event
        copy = asyncio.ensure_future(self._copy(sink))
        left = client_left_event(self._request.scope)
        try:
            if left is None:
                await copy
                return
            # A copy that waits for room to write (its host does not read) does not read the
            # client either, so only the server can say the client left.
            watch = asyncio.ensure_future(left.wait())
            try:
                await asyncio.wait((copy, watch), return_when=asyncio.FIRST_COMPLETED)
            finally:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
            if not copy.done():
                copy.cancel()
                await asyncio.gather(copy, return_exceptions=True)
                self.client_left.set()
                sink.end(StreamBroken("the client left before the end of its request body"))
                return
            copy.result()
        except asyncio.CancelledError:
            copy.cancel()
            await asyncio.gather(copy, return_exceptions=True)
            sink.end(StreamBroken("the caller stopped sending the request body"))
            raise
        except BaseException as exc:
            sink.end(StreamBroken(f"the request body broke off: {type(exc).__name__}: {exc}"))
            raise

    async def _copy(self, sink: BodySink) -> None:
        size = 0
        chunks = self._request.stream()
        try:
            while True:
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    sink.end()
                    return
                except ClientDisconnect:
                    self.client_left.set()
                    sink.end(StreamBroken("the client left before the end of its request body"))
                    return
                size += len(chunk)
                if size > self._most:  # the object reads the error (and answers as it likes)
                    sink.end(
                        RemoteLimitExceeded(
                            "stream_bytes",
                            f"the request body is over {self._most} bytes (limit stream_bytes)",
                        )
                    )
                    return
                if chunk:
                    try:
                        await sink.write(chunk)
                    except RaydoError:  # the object took no more (or stopped waiting)
                        return
        finally:
            await chunks.aclose()

    async def gone(self) -> None:
        """Return once the client has left (while its body streams, or after)."""
        await asyncio.wait([self._task])
        if not self.client_left.is_set():
            await until_disconnect(self._request.receive)

    async def stop(self) -> None:
        """Stop reading the body (if it still does) and wait until the task has ended."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def until_disconnect(receive: Receive) -> None:
    """Return once the client of an HTTP request disconnects (what it still sends of its
    body is read and dropped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class StreamedReply(StreamingResponse):
    """An object's streamed reply as the caller's response: each chunk goes to the client as
    it comes from the object; a client that leaves cancels the stream."""

    def __init__(
        self,
        head: FetchReply,
        body: BodySource,
        pump: RequestPump | None,
        gone: Callable[[], Awaitable[None]],
    ) -> None:
        self.status_code = head.status
        self.raw_headers = [(bytes(k), bytes(v)) for k, v in head.headers]
        self.background = None
        self.body_iterator = self._chunks()
        self._body = body
        self._pump = pump
        self._gone = gone

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._body.read()) is not None:
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self.stream_response(send))
        watching = asyncio.ensure_future(self._gone())
        try:
            await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
            if streaming.done():
                streaming.result()  # the object's error, if it broke off
        finally:
            await self.close("the client went away")
            for task in (streaming, watching):
                task.cancel()
            await asyncio.gather(streaming, watching, return_exceptions=True)

    async def close(self, why: str) -> None:
        """Take no more of the body (the object's generator is closed) and stop the pump."""
        self._body.cancel(StreamBroken(why))
        if self._pump is not None:
            await self._pump.stop()
