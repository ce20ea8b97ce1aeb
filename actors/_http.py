"""HTTP requests and responses as plain data, so they can travel to an object and back."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from raydo.storage.limits import LimitExceeded, Limits

_Headers = list[list[bytes]]


async def request_payload(request: Request, limits: Limits) -> list[Any]:
    """``[method, path, query, headers, body]`` of a Starlette request, its body read in full."""
    body = await read_body(request, limits)
    headers = [[k, v] for k, v in request.scope["headers"]]
    return [
        request.method,
        request.scope["path"],
        request.scope.get("query_string", b""),
        headers,
        body,
    ]


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
) -> list[Any]:
    """The payload of ``stub.fetch(url, method=, headers=, body=)``."""
    parts = urlsplit(url)
    if not parts.scheme and not url.startswith("/"):
        raise ValueError(f"fetch needs an absolute URL or a path starting with '/', got {url!r}")
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = body or b""
    if not isinstance(body, bytes):
        raise TypeError(f"fetch body must be bytes or str, got {type(body).__name__}")
    limits.check("request_bytes", len(body), "the request body")
    pairs: _Headers = []
    items = headers.items() if hasattr(headers, "items") else (headers or [])
    for name, value in items:
        pairs.append([str(name).lower().encode("latin-1"), str(value).encode("latin-1")])
    if parts.netloc and not any(k == b"host" for k, _ in pairs):
        pairs.append([b"host", parts.netloc.encode("idna")])
    if body and not any(k == b"content-length" for k, _ in pairs):
        pairs.append([b"content-length", str(len(body)).encode()])
    return [method.upper(), parts.path or "/", parts.query.encode("latin-1"), pairs, body]


def payload_request(payload: list[Any]) -> Request:
    """Rebuild the Starlette request an object's ``fetch`` sees."""
    method, path, query, headers, body = payload
    scope = {
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

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def response_payload(response: Any, limits: Limits) -> list[Any]:
    """``[status, headers, body]`` of what a ``fetch`` handler returned."""
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
    return [response.status_code, headers, body]


def payload_response(payload: list[Any]) -> Response:
    """The Starlette response a caller gets back from ``stub.fetch``."""
    status, headers, body = payload
    response = Response(status_code=status)
    response.body = body
    response.raw_headers = [(bytes(k), bytes(v)) for k, v in headers]
    return response
