"""``Request``, ``Response``, ``FormData``, ``Blob`` and ``fetch``: the Fetch-standard face of HTTP.

A :class:`Request` wraps what the gateway (or an object's host) received, a Starlette
``Request`` or ``WebSocket``, and reads its body only when asked. A :class:`Response` holds its
body whole, or wraps a Starlette response an object returned (so a streamed reply still streams
through a Worker that passes it on). Defaults follow the Fetch standard, byte for byte: a ``str``
body is ``text/plain;charset=UTF-8``, ``Response.json`` is ``application/json``, a
:class:`FormData` body is ``multipart/form-data`` with its boundary, a :class:`Blob` its type.
"""

from __future__ import annotations

import builtins
import email.policy
import json as _json
import secrets
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
)
from email.parser import BytesParser
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import parse_qsl

import httpx
from starlette.datastructures import Headers as _StarletteHeaders
from starlette.datastructures import MutableHeaders
from starlette.requests import Request as _StarletteRequest
from starlette.responses import Response as _StarletteResponse
from starlette.responses import StreamingResponse
from starlette.websockets import WebSocket as _StarletteWebSocket

if TYPE_CHECKING:
    from ._websockets import WebSocket

TEXT_TYPE = "text/plain;charset=UTF-8"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded;charset=UTF-8"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# httpx hands over the body decoded: its encoding and length headers no longer describe it.
_DECODED = frozenset({b"content-encoding", b"content-length"})

Headers = MutableHeaders
"""Headers: case-insensitive, ``get``, ``[]``, ``items()``, ``append``; ``dict(headers)``."""

HeadersInit = Mapping[str, str] | Iterable[tuple[str, str]] | _StarletteHeaders | None
BodyInit = "str | bytes | bytearray | FormData | Blob | None"


def _headers(init: Any) -> MutableHeaders:
    if init is None:
        return MutableHeaders()
    if isinstance(init, _StarletteHeaders):
        return MutableHeaders(raw=list(init.raw))
    pairs = init.items() if isinstance(init, Mapping) else init
    try:
        raw = [(str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in pairs]
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "headers must be a dict of str to str or a list of (name, value) pairs"
        ) from exc
    return MutableHeaders(raw=raw)


class Blob:
    """Bytes with a content type (``Blob(parts, type=)``); ``await blob.bytes()/text()``."""

    _data: builtins.bytes

    def __init__(self, parts: Iterable[str | bytes | Blob] = (), type: str = "") -> None:
        chunks: list[bytes] = []
        for part in parts:
            if isinstance(part, Blob):
                chunks.append(part._data)
            elif isinstance(part, str):
                chunks.append(part.encode())
            elif isinstance(part, bytes | bytearray):
                chunks.append(bytes(part))
            else:
                raise TypeError(
                    f"Blob parts are str, bytes or Blob, got {builtins.type(part).__name__}"
                )
        self._data = b"".join(chunks)
        self.type = type.lower()

    @property
    def size(self) -> int:
        return len(self._data)

    async def bytes(self) -> builtins.bytes:
        return self._data

    async def text(self) -> str:
        return self._data.decode()

    async def arrayBuffer(self) -> builtins.bytes:
        return self._data

    def slice(self, start: int = 0, end: int | None = None, type: str = "") -> Blob:
        return Blob([self._data[start:end]], type=type)


class File(Blob):
    """A :class:`Blob` with a name (a form field's upload)."""

    def __init__(self, parts: Iterable[str | bytes | Blob], name: str, type: str = "") -> None:
        super().__init__(parts, type)
        self.name = name


FormDataValue = "str | Blob"


class FormData(MutableMapping[str, Any]):
    """Form fields in order, several values per name: ``append``, ``get``, ``getAll``,
    ``set``, ``delete``, ``has``; as a mapping, ``form[name]`` is the first value."""

    def __init__(self, fields: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        self._fields: list[tuple[str, str | Blob]] = []
        pairs = fields.items() if isinstance(fields, Mapping) else (fields or ())
        for name, value in pairs:
            self.append(name, value)

    def append(self, name: str, value: str | Blob, filename: str | None = None) -> None:
        if isinstance(value, Blob) and filename is not None:
            value = File([value], filename, value.type)
        elif not isinstance(value, str | Blob):
            value = str(value)
        self._fields.append((name, value))

    def get(self, name: str, default: Any = None) -> Any:
        return next((v for n, v in self._fields if n == name), default)

    def getAll(self, name: str) -> list[str | Blob]:
        return [v for n, v in self._fields if n == name]

    get_all = getAll

    def set(self, name: str, value: str | Blob) -> None:
        self.delete(name)
        self.append(name, value)

    def delete(self, name: str) -> None:
        self._fields = [(n, v) for n, v in self._fields if n != name]

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self._fields)

    def __getitem__(self, name: str) -> Any:
        for n, v in self._fields:
            if n == name:
                return v
        raise KeyError(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if not self.has(name):
            raise KeyError(name)
        self.delete(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(n for n, _ in self._fields))

    def __len__(self) -> int:
        return len(dict.fromkeys(n for n, _ in self._fields))

    def entries(self) -> list[tuple[str, str | Blob]]:
        return list(self._fields)

    def _encode(self) -> tuple[bytes, str]:
        boundary = "----raydoFormBoundary" + secrets.token_hex(8)
        out = bytearray()
        for name, value in self._fields:
            out += f"--{boundary}\r\n".encode()
            quoted = name.replace('"', "%22")
            if isinstance(value, Blob):
                filename = value.name if isinstance(value, File) else "blob"
                out += (
                    f'Content-Disposition: form-data; name="{quoted}";'
                    f' filename="{filename.replace(chr(34), "%22")}"\r\n'
                    f"Content-Type: {value.type or 'application/octet-stream'}\r\n\r\n"
                ).encode()
                out += value._data
            else:
                out += f'Content-Disposition: form-data; name="{quoted}"\r\n\r\n'.encode()
                out += value.encode()
            out += b"\r\n"
        out += f"--{boundary}--\r\n".encode()
        return bytes(out), f"multipart/form-data; boundary={boundary}"


def _encode_body(body: Any) -> tuple[bytes | None, str | None]:
    """A body's bytes and the content type the Fetch standard gives it (None: none)."""
    if body is None:
        return None, None
    if isinstance(body, str):
        return body.encode(), TEXT_TYPE
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), None
    if isinstance(body, FormData):
        return body._encode()
    if isinstance(body, Blob):
        return body._data, body.type or None
    raise TypeError(
        f"unsupported body type {type(body).__name__}: give str, bytes, FormData or Blob"
        " (for JSON, use Response.json(data))"
    )


async def _parse_form(content_type: str, data: bytes, headers: Any) -> FormData:
    form = FormData()
    if content_type.startswith("application/x-www-form-urlencoded"):
        for name, value in parse_qsl(data.decode(), keep_blank_values=True):
            form.append(name, value)
        return form
    if content_type.startswith("multipart/form-data"):
        # The standard library's MIME parser (not python-multipart, which raydo does not need).
        head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
        message = BytesParser(policy=email.policy.HTTP).parsebytes(head + data)
        if not message.is_multipart():
            raise TypeError("formData(): the multipart body has no parts (is its boundary right?)")
        for part in message.iter_parts():
            field = part.get_param("name", header="content-disposition")
            if not isinstance(field, str):
                raise TypeError("formData(): a part of the multipart body has no field name")
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is None:
                form.append(field, content.decode(part.get_content_charset() or "utf-8", "replace"))
            else:
                explicit = part.get("content-type") is not None
                form.append(
                    field, File([content], filename, part.get_content_type() if explicit else "")
                )
        return form
    raise TypeError(f"formData() needs a form body, but the content type is {content_type!r}")


class _Body:
    """What Request and Response share: the body read once, as text, JSON, bytes or a form."""

    headers: MutableHeaders
    _data: builtins.bytes | None
    _used: bool

    async def _read(self) -> bytes:
        if self._used:
            raise TypeError("the body has already been used (read it once, keep the value)")
        self._used = True
        return await self._load()

    async def _load(self) -> bytes:
        return self._data or b""

    @property
    def bodyUsed(self) -> bool:
        return self._used

    async def text(self) -> str:
        return (await self._read()).decode("utf-8", errors="replace")

    async def bytes(self) -> builtins.bytes:
        return await self._read()

    async def arrayBuffer(self) -> builtins.bytes:
        return await self._read()

    async def blob(self) -> Blob:
        return Blob([await self._read()], type=self.headers.get("content-type", ""))

    async def formData(self) -> FormData:
        data = await self._read()
        return await _parse_form(self.headers.get("content-type", ""), data, self.headers)

    form_data = formData

    async def _json(self) -> Any:
        return _json.loads(await self._read())


class Request(_Body):
    """An HTTP request: ``url``, ``method``, ``headers``, ``cf`` (an empty mapping: raydo has
    no edge), and the body as ``await text()``, ``json()``, ``bytes()``, ``formData()``.

    ``Request(url, method=, headers=, body=)`` makes one to send with :func:`fetch` or a stub.
    """

    url: str
    method: str

    def __init__(
        self,
        url: str | Request,
        *,
        method: str | None = None,
        headers: Any = None,
        body: Any = None,
    ) -> None:
        self._source: _StarletteRequest | _StarletteWebSocket | None = None
        self._used = False
        self.cf: dict[str, Any] = {}
        if isinstance(url, Request):
            self.url = url.url
            self.method = (method or url.method).upper()
            self.headers = _headers(headers if headers is not None else url.headers)
            self._data = url._data
            self._source = url._source if body is None else None
            if body is not None:
                self._data, content_type = _encode_body(body)
                if content_type is not None and "content-type" not in self.headers:
                    self.headers["content-type"] = content_type
            return
        if not isinstance(url, str):
            raise TypeError(f"Request takes a URL string, got {type(url).__name__}")
        self.url = url
        self.method = (method or "GET").upper()
        self.headers = _headers(headers)
        self._data, content_type = _encode_body(body)
        if content_type is not None and "content-type" not in self.headers:
            self.headers["content-type"] = content_type

    @classmethod
    def _from_starlette(cls, source: _StarletteRequest | _StarletteWebSocket) -> Request:
        request = cls.__new__(cls)
        request._source = source
        request._used = False
        request._data = None
        request.cf = {}
        request.url = str(source.url)
        request.method = source.scope.get("method", "GET")
        request.headers = MutableHeaders(raw=list(source.headers.raw))
        return request

    async def _load(self) -> bytes:
        if isinstance(self._source, _StarletteRequest):
            return await self._source.body()
        return self._data or b""

    async def json(self) -> Any:
        return await self._json()

    @property
    def js_object(self) -> Request:
        """The request itself: code written for older Python Workers passes this on."""
        return self

    @property
    def body(self) -> bytes | None:
        return self._data

    def clone(self) -> Request:
        return Request(self)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.url})"


class _JsonAccess:
    """``Response.json(data)`` makes a JSON response; ``await response.json()`` reads one."""

    @overload
    def __get__(self, response: None, owner: type[Response]) -> Callable[..., Response]: ...

    @overload
    def __get__(
        self, response: Response, owner: type[Response]
    ) -> Callable[[], Awaitable[Any]]: ...

    def __get__(self, response: Response | None, owner: type[Response]) -> Any:
        if response is None:
            return owner._from_json
        return response._json


class Response(_Body):
    """An HTTP response: ``Response(body, status=200, status_text="", headers=None,
    web_socket=None)``; ``Response.json(data, status=)``, ``Response.redirect(url, status=302)``.

    ``web_socket`` is the client end of a :class:`WebSocketPair` whose server end the object
    accepted with ``self.ctx.acceptWebSocket``; such a response has status 101.

    ``body`` may also be a stream, any async iterable of bytes or str (an async generator,
    or ``env.AI.run``'s answer with ``"stream": True``, which also gives the response its
    ``text/event-stream`` type): it is sent chunk by chunk as it comes, without a length.
    """

    json = _JsonAccess()

    def __init__(
        self,
        body: Any = None,
        status: int | HTTPStatus | None = None,
        status_text: str = "",
        headers: Any = None,
        web_socket: WebSocket | None = None,
        *,
        statusText: str = "",
    ) -> None:
        code = int(status) if status is not None else 200
        if web_socket is not None:
            if code != 101:
                raise ValueError("a response with web_socket= must have status 101")
        elif not 200 <= code <= 599:
            raise ValueError(f"status must be from 200 to 599, got {code}")
        self.status = code
        self.status_text = status_text or statusText
        self.headers = _headers(headers)
        self.web_socket = web_socket
        self._native: _StarletteResponse | None = None
        self._used = False
        self.url = ""
        self.redirected = False
        # A stream (an async iterable of bytes or str, such as env.AI.run's with "stream":
        # True) is sent as it comes, as a ReadableStream body is on the platform.
        self._stream: AsyncIterable[Any] | None = None
        if body is not None and hasattr(body, "__aiter__"):
            self._stream, self._data = body, None
            content_type = getattr(body, "media_type", None)
        else:
            self._data, content_type = _encode_body(body)
        if content_type is not None and "content-type" not in self.headers:
            self.headers["content-type"] = content_type

    @classmethod
    def _from_json(
        cls,
        data: Any,
        status: int | HTTPStatus = 200,
        status_text: str = "",
        headers: Any = None,
    ) -> Response:
        # JSON.stringify's bytes: no spaces, non-ASCII kept as UTF-8.
        text = _json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        response = cls(text, status, status_text, headers)
        if headers is None or "content-type" not in _headers(headers):
            response.headers["content-type"] = JSON_TYPE
        return response

    from_json = _from_json

    @classmethod
    def redirect(cls, url: str, status: int | HTTPStatus = 302) -> Response:
        """A redirect to ``url``: status 301, 302, 303, 307 or 308, a ``location`` header."""
        if int(status) not in REDIRECT_STATUSES:
            raise ValueError(f"redirect status must be 301, 302, 303, 307 or 308, got {status}")
        return cls(None, int(status), headers={"location": url})

    @classmethod
    def _from_starlette(cls, native: _StarletteResponse) -> Response:
        response = cls(None, 200)
        response.status = native.status_code
        response.headers = MutableHeaders(raw=list(native.headers.raw))
        response._native = native
        return response

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    @property
    def statusText(self) -> str:
        return self.status_text

    @property
    def body(self) -> bytes | None:
        return self._data

    async def _load(self) -> bytes:
        if self._stream is not None:
            return b"".join([chunk async for chunk in _chunks(self._stream)])
        native = self._native
        if native is None:
            return self._data or b""
        iterator = getattr(native, "body_iterator", None)
        if iterator is None:
            return bytes(native.body)
        chunks = [c.encode() if isinstance(c, str) else bytes(c) async for c in iterator]
        return b"".join(chunks)

    def _to_starlette(self) -> _StarletteResponse:
        """The response to send (a wrapped native one untouched, so it still streams)."""
        if self._native is not None and not self._used:
            native = self._native
            native.status_code = self.status
            return native
        if self._used and (self._native is not None or self._stream is not None):
            raise TypeError("the response body was read: make a new Response to send it")
        if self._stream is not None:
            streaming = StreamingResponse(_chunks(self._stream), status_code=self.status)
            streaming.raw_headers = [(k, v) for k, v in self.headers.raw if k != b"content-length"]
            return streaming
        response = _StarletteResponse(self._data or b"", status_code=self.status)
        response.raw_headers = [(k, v) for k, v in self.headers.raw if k != b"content-length"] + [
            (b"content-length", str(len(self._data or b"")).encode())
        ]
        return response

    def __repr__(self) -> str:
        return f"Response(status={self.status})"


async def _chunks(stream: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    async for chunk in stream:
        if isinstance(chunk, str):
            yield chunk.encode()
        elif isinstance(chunk, bytes | bytearray | memoryview):
            yield bytes(chunk)
        else:
            raise TypeError(f"a streamed body gives bytes or str, not {type(chunk).__name__}")


async def fetch(
    resource: str | Request,
    *,
    method: str | None = None,
    headers: Any = None,
    body: Any = None,
    redirect: str = "follow",
    timeout: float | None = 60.0,
    **unsupported: Any,
) -> Response:
    """Send an HTTP request to the outside world (with httpx) and return its :class:`Response`.

    ``redirect`` is ``"follow"`` (the default) or ``"manual"``; ``cf`` options are accepted and
    ignored (raydo has no edge cache). A network failure raises ``OSError``.
    """
    unknown = sorted(set(unsupported) - {"cf"})
    if unknown:
        raise TypeError(f"fetch() got unsupported options {unknown}")
    if redirect not in ("follow", "manual"):
        raise ValueError(f"redirect must be 'follow' or 'manual', got {redirect!r}")
    request = resource if isinstance(resource, Request) else Request(resource)
    if method is not None or headers is not None or body is not None:
        request = Request(request, method=method, headers=headers, body=body)
    content = await request._load()
    try:
        async with httpx.AsyncClient(
            follow_redirects=redirect == "follow", timeout=timeout
        ) as client:
            reply = await client.request(
                request.method,
                request.url,
                headers=list(request.headers.items()),
                content=content or None,
            )
    except httpx.InvalidURL as exc:
        raise ValueError(f"fetch: invalid URL {request.url!r}: {exc}") from exc
    except httpx.UnsupportedProtocol as exc:
        raise ValueError(f"fetch: unsupported URL {request.url!r}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise OSError(f"fetch {request.method} {request.url} failed: {exc}") from exc
    response = Response(reply.content, reply.status_code)
    response.headers = MutableHeaders(
        raw=[(k.lower(), v) for k, v in reply.headers.raw if k.lower() not in _DECODED]
    )
    response.url = str(reply.url)
    response.redirected = bool(reply.history)
    return response
