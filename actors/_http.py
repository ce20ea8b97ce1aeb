"""HTTP requests and responses as records (:mod:`actors._payloads`), so they can travel to
an object and back: a caller's Starlette request becomes a :class:`FetchRequest`, the
object's ``fetch`` sees a Starlette request made from it again (an :class:`ObjectRequest`),
and its response travels back as a :class:`FetchReply`.

A body may stream instead (its record's ``body`` is None; see :mod:`actors._streams`): the
object's request then reads it from the stream as it arrives, and the caller's side of that
is :mod:`actors._relay`; a reply that streams is :mod:`actors._streamed_reply`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Scope

from raydo.storage.limits import DEFAULT_LIMITS, LimitExceeded, Limits

from ._errors import StreamBroken
from ._payloads import FetchReply, FetchRequest, Headers, Upgrade
from ._streams import BUFFERED_BODY_BYTES, BodySource


async def request_payload(request: Request, limits: Limits) -> FetchRequest:
    """The record of a Starlette request, its body read in full."""
    body = await read_body(request, limits)
    return FetchRequest(
        request.method,
        request.scope["path"],
        request.scope.get("query_string", b""),
        scope_headers(request.scope),
        body,
    )


def upgrade_request(scope: Scope, upgrade: Upgrade) -> FetchRequest:
    """The record of a WebSocket upgrade: a GET without a body, with the socket's id."""
    return FetchRequest(
        "GET", scope["path"], scope.get("query_string", b""), scope_headers(scope), b"", upgrade
    )


def streamed_request(request: Request) -> FetchRequest:
    """The record of a Starlette request whose body streams beside it (``body`` None)."""
    return FetchRequest(
        request.method,
        request.scope["path"],
        request.scope.get("query_string", b""),
        scope_headers(request.scope),
        None,
    )


def body_streams(request: Request) -> bool:
    """Whether a request's body should stream rather than travel in its event: it is longer
    than :data:`~actors._streams.BUFFERED_BODY_BYTES`, or of unknown length (chunked)."""
    headers = request.headers
    declared = headers.get("content-length")
    if declared is not None:
        return not declared.isdigit() or int(declared) > BUFFERED_BODY_BYTES
    if "transfer-encoding" in headers:
        return True
    return isinstance(request, ObjectRequest) and request.streams_body


def scope_headers(scope: Scope) -> Headers:
    return [[k, v] for k, v in scope["headers"]]


async def read_body(request: Request, limits: Limits) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        limits.check("request_bytes", int(declared), "the request body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        limits.check("request_bytes", size, "the request body")
        chunks.append(chunk)
    return b"".join(chunks)


def url_payload(
    url: str, method: str, headers: Any, body: bytes | str | None, limits: Limits
) -> FetchRequest:
    """The record of ``stub.fetch(url, method=, headers=, body=)``."""
    parts = urlsplit(url)
    if not parts.scheme and not url.startswith("/"):
        raise ValueError(f"fetch needs an absolute URL or a path starting with '/', got {url!r}")
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = body or b""
    if not isinstance(body, bytes):
        raise TypeError(f"fetch body must be bytes or str, got {type(body).__name__}")
    limits.check("request_bytes", len(body), "the request body")
    pairs: Headers = []
    items = headers.items() if hasattr(headers, "items") else (headers or [])
    for name, value in items:
        pairs.append([str(name).lower().encode("latin-1"), str(value).encode("latin-1")])
    if parts.netloc and not any(k == b"host" for k, _ in pairs):
        pairs.append([b"host", parts.netloc.encode("idna")])
    if body and not any(k == b"content-length" for k, _ in pairs):
        pairs.append([b"content-length", str(len(body)).encode()])
    return FetchRequest(
        method.upper(), parts.path or "/", parts.query.encode("latin-1"), pairs, body
    )


class ObjectRequest(Request):
    """The Starlette request an object's ``fetch`` sees. ``await request.body()`` (and
    ``json()``, ``form()``) read the body whole, at most ``request_bytes``; ``async for chunk
    in request.stream()`` takes a streamed body chunk by chunk as it arrives, at most
    ``stream_bytes``, the client sending no faster than the object reads."""

    def __init__(self, scope: Scope, receive: Any, limits: Limits, streams_body: bool) -> None:
        super().__init__(scope, receive)
        self._limits = limits
        self.streams_body = streams_body
        """Whether the body streams (rather than having come inside the event)."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            chunks, size = [], 0
            async for chunk in self.stream():
                size += len(chunk)
                self._limits.check("request_bytes", size, "the request body (read whole)")
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body


def fetch_request(
    fetch: FetchRequest, stream: BodySource | None = None, limits: Limits | None = None
) -> ObjectRequest:
    """Rebuild the Starlette request an object's ``fetch`` sees; a streamed body (``body``
    None) is read from ``stream``."""
    method, path, query, headers, body = fetch[:5]
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": "",
        "headers": [(bytes(k), bytes(v)) for k, v in headers],
        "client": None,
        "server": None,
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def receive_streamed() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        if stream is None:
            raise StreamBroken("the request body streams, but no stream came with it")
        chunk = await stream.read()
        if chunk is None:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    return ObjectRequest(
        scope,
        receive if body is not None else receive_streamed,
        DEFAULT_LIMITS if limits is None else limits,
        body is None,
    )


async def response_reply(response: Any, limits: Limits) -> FetchReply:
    """The record of what a ``fetch`` handler returned."""
    if not isinstance(response, Response):
        raise TypeError(f"fetch must return a starlette Response, not {type(response).__name__}")
    if isinstance(response, StreamingResponse):
        chunks, size = [], 0
        async for chunk in response.body_iterator:
            data = chunk.encode(response.charset) if isinstance(chunk, str) else bytes(chunk)
            size += len(data)
            if size > limits.message_bytes:
                raise LimitExceeded(
                    "message_bytes", f"the response body is over {limits.message_bytes} bytes"
                )
            chunks.append(data)
        body = b"".join(chunks)
        headers = [[k, v] for k, v in response.raw_headers if k != b"content-length"]
        headers.append([b"content-length", str(len(body)).encode()])
    elif not hasattr(response, "body"):
        raise TypeError(
            f"fetch returned a {type(response).__name__}, which has no body to send back:"
            " return a Response with a body or a StreamingResponse"
        )
    else:
        body = bytes(response.body)
        limits.check("message_bytes", len(body), "the response body")
        headers = [[k, v] for k, v in response.raw_headers]
    return FetchReply(response.status_code, headers, body)


def reply_response(reply: FetchReply) -> Response:
    """The Starlette response a caller gets back from ``stub.fetch`` (a buffered reply)."""
    status, headers, body = reply[:3]
    if body is None:
        raise ValueError("a streamed reply has no body to buffer")
    response = Response(status_code=status)
    response.body = body
    response.raw_headers = [(bytes(k), bytes(v)) for k, v in headers]
    return response
