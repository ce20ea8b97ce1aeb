"""The folder of static assets, served: files found by ``_resolve``'s rules, with their
content type, a strong ``ETag`` (answering ``If-None-Match`` with 304) and
``Cache-Control: public, max-age=0, must-revalidate``, as Cloudflare serves them.

A request path is percent-decoded once, segment by segment (so ``%252e%252e`` names a file
called ``%2e%2e``); a segment that is ``.`` or ``..``, or holds ``/``, ``\\`` or NUL once
decoded, names nothing. The file found is resolved (symlinks followed) and must still lie
inside the folder: nothing outside it is ever read.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ._content_types import content_type
from ._resolve import HTML_HANDLING, NOT_FOUND_HANDLING, Redirect, Serve, resolve
from ._rules import Ignore, Rules, read_ignore, read_rules

CACHE_CONTROL = "public, max-age=0, must-revalidate"
#: Files up to this size are read whole; larger ones stream in chunks of it.
CHUNK_BYTES = 1 << 20
#: Files up to this size are read on the loop itself.
INLINE_BYTES = 64 << 10
_MAX_ETAGS = 10_000
#: The folder's own files, read by raydo and never served (as Cloudflare never uploads them).
RULE_FILES = ("_redirects", "_headers", ".assetsignore")
_NOT_SERVED = {"/_redirects", "/_headers", "/.assetsignore"}


@dataclass(frozen=True, slots=True)
class AssetSettings:
    """``[assets]``: the folder and how requests map onto it."""

    directory: str
    """Absolute path of the folder."""
    binding: str | None = None
    run_worker_first: bool | tuple[str, ...] = False
    """True: every request reaches the app first; or the routes that do (``"/api/*"``, with
    ``"!/api/docs/*"`` excepting some: a negated pattern wins)."""
    html_handling: str = "auto-trailing-slash"
    not_found_handling: str = "none"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> AssetSettings:
        given = dict(options)
        first = given.get("run_worker_first", False)
        if not isinstance(first, bool):
            given["run_worker_first"] = tuple(check_routes(first))
        settings = cls(**given)
        if settings.html_handling not in HTML_HANDLING:
            raise ValueError(f"html_handling: {settings.html_handling!r}")
        if settings.not_found_handling not in NOT_FOUND_HANDLING:
            raise ValueError(f"not_found_handling: {settings.not_found_handling!r}")
        return settings


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    size: int
    etag: str


class AssetServer:
    """Answers requests from the folder (``env.ASSETS`` is one; the gateway holds another)."""

    def __init__(self, settings: AssetSettings) -> None:
        self.settings = settings
        self.root = Path(settings.directory).resolve()
        self._root_text = str(self.root)
        self._rules = Rules()
        self._ignore = Ignore()
        self._rules_seen: tuple[tuple[int, int] | None, ...] | None = None
        self._etags: dict[tuple[str, int, int, int], str] = {}
        first = settings.run_worker_first
        routes = () if isinstance(first, bool) else first
        self._worker_first = [_route(r) for r in routes if not r.startswith("!")]
        self._asset_first = [_route(r[1:]) for r in routes if r.startswith("!")]

    def worker_first(self, path: str) -> bool:
        """Whether a request for ``path`` (as sent) goes to the app before the folder."""
        if self.settings.run_worker_first is True:
            return True
        if any(p.fullmatch(path) for p in self._asset_first):
            return False
        return any(p.fullmatch(path) for p in self._worker_first)

    # Lookup.

    def _file(self, asset: str) -> Path | None:
        """The regular file the asset path names inside the folder, or None."""
        parts = asset.split("/")[1:]
        if (
            asset in _NOT_SERVED
            or not parts
            or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts)
        ):
            return None
        candidate = os.path.join(self._root_text, *parts)
        try:
            if not stat.S_ISREG(os.stat(candidate).st_mode):  # most lookups end here: missing
                return None
            found = Path(os.path.realpath(candidate, strict=True))
        except (OSError, ValueError):  # missing, a symlink loop, too long
            return None
        # Checked on the result, symlinks followed: nothing outside the folder is served, nor
        # the folder's own rule files (through a link either).
        if not found.is_relative_to(self.root):
            return None
        inside = "/" + found.relative_to(self.root).as_posix()
        if inside in _NOT_SERVED or asset in self._ignore or inside in self._ignore:
            return None
        return found

    def exists(self, asset: str) -> bool:
        return self._file(asset) is not None

    def intent(self, raw_path: str, *, not_found: bool = True) -> Serve | Redirect | None:
        """What the raw (percent-encoded) request path is answered with; ``not_found=False``
        leaves paths that match no file to the caller (no SPA page, no 404 page)."""
        path = decode_path(raw_path)
        if path is None:
            return None
        mode = self.settings.not_found_handling if not_found else "none"
        return resolve(path, self.settings.html_handling, mode, self.exists)

    # Answers.

    def rules(self) -> Rules:
        """The folder's ``_redirects``, ``_headers`` and ``.assetsignore``, read again when
        one changes."""
        seen = tuple(_stamp(self.root / name) for name in RULE_FILES)
        if seen != self._rules_seen:
            redirects, headers, ignore = (
                _text(self.root / name) if s else None
                for name, s in zip(RULE_FILES, seen, strict=True)
            )
            self._rules, self._rules_seen = read_rules(redirects, headers), seen
            self._ignore = read_ignore(ignore)
        return self._rules

    async def response(
        self, method: str, raw_path: str, query: str, headers: Headers, *, not_found: bool = True
    ) -> Response | None:
        """The answer to a request, or None when no asset matches (not even a not-found
        page). ``_redirects`` is applied first, ``_headers`` to every answer."""
        rules = self.rules()
        asked = raw_path
        rewritten = False
        redirect = rules.redirect(raw_path)
        if redirect is not None and redirect[0] != 200:
            status, target = redirect
            location = target + (f"?{query}" if query and "?" not in target else "")
            return _with_rules(
                Response(status_code=status, headers={"location": location}), rules, asked
            )
        if redirect is not None:
            raw_path, rewritten = redirect[1], True
        intent = self.intent(raw_path, not_found=not_found)
        if intent is None:
            return _with_rules(Response(status_code=404), rules, asked) if rewritten else None
        if method not in ("GET", "HEAD"):
            return Response(status_code=405, headers={"allow": "GET, HEAD"})
        answer: Response | None
        if isinstance(intent, Redirect):
            location = intent.location + (f"?{query}" if query else "")
            answer = Response(status_code=307, headers={"location": location})
        else:
            answer = await self._serve(intent, method, headers)
        return None if answer is None else _with_rules(answer, rules, asked)

    async def _serve(self, intent: Serve, method: str, request: Headers) -> Response | None:
        path = self._file(intent.asset)
        if path is None:  # gone since it was resolved
            return None
        found = await self._describe(path)
        headers = {"etag": f'"{found.etag}"', "content-type": content_type(intent.asset)}
        if "authorization" not in request and "range" not in request:
            headers["cache-control"] = CACHE_CONTROL
        tags = {t.strip() for t in request.get("if-none-match", "").split(",")}
        if headers["etag"] in tags or f"W/{headers['etag']}" in tags:
            return Response(status_code=304, headers=headers)
        headers["content-length"] = str(found.size)
        if method == "HEAD":
            return Response(status_code=intent.status, headers=headers)
        if found.size <= INLINE_BYTES:  # a local read this small costs less than a thread hop
            body = path.read_bytes()
        elif found.size <= CHUNK_BYTES:
            body = await anyio.to_thread.run_sync(path.read_bytes)
        else:
            return StreamingResponse(_chunks(path), status_code=intent.status, headers=headers)
        headers["content-length"] = str(len(body))
        return Response(body, status_code=intent.status, headers=headers)

    async def _describe(self, path: Path) -> _File:
        info = path.stat()
        key = (str(path), info.st_mtime_ns, info.st_size, info.st_ino)
        etag = self._etags.get(key)
        if etag is None and info.st_size <= INLINE_BYTES:
            etag = _digest(path)
        elif etag is None:
            etag = await anyio.to_thread.run_sync(_digest, path)
            if len(self._etags) >= _MAX_ETAGS:
                self._etags.clear()
            self._etags[key] = etag
        return _File(path, info.st_size, etag)

    async def fetch(self, request: Any) -> Response:
        """``env.ASSETS.fetch(request)``: the asset the request names, with the folder's
        not-found handling, else a 404. ``request`` is a URL or path, a Starlette request,
        or any request with ``url``, ``method`` and ``headers`` (a Worker's)."""
        method, raw_path, query, headers = _request_parts(request)
        response = await self.response(method, raw_path, query, headers)
        return response if response is not None else Response(status_code=404)

    async def serve_first(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """In front of the app: answer the request from the folder when an asset matches it
        (the not-found page only for a browser's navigation); whether it did."""
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.decode("latin-1").partition("?")[0]
        if self.worker_first(scope["path"]):
            return False
        headers = Headers(scope=scope)
        navigate = headers.get("sec-fetch-mode") == "navigate"
        query = scope.get("query_string", b"").decode("latin-1")
        response = await self.response(
            scope["method"], raw_path, query, headers, not_found=navigate
        )
        if response is None:
            return False
        await response(scope, receive, send)
        return True


MAX_ROUTES = 100


def check_routes(routes: object) -> list[str]:
    """``run_worker_first`` as a list: route patterns (``/api/*``, ``!/api/docs/*``), each
    starting with ``/`` (after its ``!``), ``*`` matching anything; ValueError otherwise."""
    if not isinstance(routes, list | tuple) or not 0 < len(routes) <= MAX_ROUTES:
        raise ValueError(f"expected true, false or a list of 1 to {MAX_ROUTES} route patterns")
    for route in routes:
        if not isinstance(route, str) or not route.removeprefix("!").startswith("/"):
            raise ValueError(f"a route pattern starts with / (or !/), got {route!r}")
        if len(route) > 256 or "\0" in route:
            raise ValueError(f"a route pattern is at most 256 characters, no NUL: {route[:40]!r}")
    return list(routes)


def _route(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def decode_path(raw_path: str) -> str | None:
    """``/a%20b/c`` -> ``/a b/c``, each segment decoded once, repeated slashes collapsed;
    None for a path that is not one (no leading ``/``, a segment that decodes to ``/``, ``.``,
    ``..``, a backslash or NUL, bytes that are not UTF-8)."""
    if not raw_path.startswith("/"):
        return None
    segments = []
    for segment in raw_path.split("/")[1:]:
        try:
            decoded = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            return None
        if decoded in (".", "..") or any(c in decoded for c in "/\\\0"):
            return None
        segments.append(decoded)
    path = "/" + "/".join(segments)
    while "//" in path:
        path = path.replace("//", "/")
    return path


def _request_parts(request: Any) -> tuple[str, str, str, Headers]:
    if isinstance(request, str):
        url = urlsplit(request)
        return "GET", url.path or "/", url.query, Headers()
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and scope.get("type") == "http":
        raw = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"").decode("latin-1")
        return scope["method"], raw.decode("latin-1").partition("?")[0], query, Headers(scope=scope)
    url_text = getattr(request, "url", None)
    if url_text is None:
        raise TypeError(
            "ASSETS.fetch() takes a request (with url, method, headers) or a URL,"
            f" got {type(request).__name__}"
        )
    url = urlsplit(str(url_text))
    given = getattr(request, "headers", None)
    pairs = [(str(k).lower(), str(v)) for k, v in given.items()] if given is not None else []
    headers = Headers(raw=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs])
    method = str(getattr(request, "method", "GET")).upper()
    return method, url.path or "/", url.query, headers


def _with_rules(response: Response, rules: Rules, path: str) -> Response:
    """``_headers``' rules for ``path`` applied: removals, then values (joined with ``, ``
    when several rules set one name)."""
    touched: set[str] = set()
    for rule in rules.headers_for(path):
        for name in rule.unset:
            if name in response.headers:
                del response.headers[name]
        for name, value in rule.set:
            if name in touched:
                response.headers[name] = f"{response.headers[name]}, {value}"
            else:
                response.headers[name] = value
                touched.add(name)
    return response


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size) if stat.S_ISREG(info.st_mode) else None


def _text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()[:32]


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    file = await anyio.to_thread.run_sync(path.open, "rb")
    try:
        while chunk := await anyio.to_thread.run_sync(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()
