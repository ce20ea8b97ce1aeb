"""The inspector in the browser: one page at ``/_raydo/inspector`` and its JSON routes.

``raydo dev`` serves it by default (``--no-inspector`` turns it off), with no token: dev
listens on 127.0.0.1 only. ``raydo serve --inspector`` serves it with a token: the one
``--inspector-token`` or ``RAYDO_INSPECTOR_TOKEN`` gives, else one made at start and
printed. What happens to a request under ``/_raydo/inspector``, in order:

1. Off: 404, whatever the path (the user's app never sees these paths either).
2. From a client other than 127.0.0.1 or ::1: 404, unless the inspector was asked to answer
   anyone (``serve --inspector-public``; the token still applies).
3. Without a token (dev): the request's ``Host`` must be a loopback name (``127.0.0.1``,
   ``localhost``, ``[::1]``), so a page elsewhere cannot reach it by rebinding a DNS name to
   127.0.0.1: 403 otherwise.
4. With a token: the page's ``?token=`` (checked, then kept in an HttpOnly, SameSite=Strict
   cookie for the inspector's paths, and the browser sent back to the page without it),
   ``Authorization: Bearer TOKEN`` or that cookie must carry it, compared in constant time:
   401 otherwise.
5. The page and its script and style (files of this package, under ``inspector_static/``;
   nothing loaded from anywhere else), or a JSON route (:mod:`gateway.inspector_api`).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.types import Receive, Scope, Send

from .inspector_api import Inspected, InspectorApi, json_response

#: Where the inspector lives on the gateway's port.
PREFIX = "/_raydo/inspector"
#: The token ``raydo serve --inspector`` takes from the environment.
TOKEN_VARIABLE = "RAYDO_INSPECTOR_TOKEN"
#: ``serve``'s ``--inspector`` and ``--inspector-public``, handed to its workers.
_ON_VARIABLE = "RAYDO_INSPECTOR"
PUBLIC_VARIABLE = "RAYDO_INSPECTOR_PUBLIC"
COOKIE = "raydo_inspector"
STATIC = Path(__file__).resolve().parent / "inspector_static"
#: The files the page is made of: nothing else under STATIC is ever served.
_FILES = {
    "inspector.js": "text/javascript; charset=utf-8",
    "inspector.css": "text/css; charset=utf-8",
}
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
#: The page may run only its own script and talk only to its own origin.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
    " img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True, slots=True)
class InspectorSettings:
    """How a gateway serves the inspector: ``token`` None (``raydo dev``) or the one every
    request must carry; ``public``: answer clients beyond 127.0.0.1 and ::1."""

    token: str | None = None
    public: bool = False

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise ValueError(f"the inspector's token is at least {MIN_TOKEN_CHARS} characters")
        if self.public and self.token is None:
            raise ValueError("an inspector open beyond 127.0.0.1 needs a token")


def new_token() -> str:
    """A token for ``serve --inspector`` when none was given."""
    return secrets.token_urlsafe(24)


def serve_settings(
    on: bool, token: str | None, public: bool, environ: Mapping[str, str] | None = None
) -> tuple[InspectorSettings | None, bool]:
    """``serve``'s options as settings (None when off), and whether the token was made now
    (and so must be shown). The token is ``token``, else ``RAYDO_INSPECTOR_TOKEN``, else
    new. ``ValueError`` for options that do not go together or a short token."""
    if not on:
        if token is not None or public:
            raise ValueError("--inspector-token and --inspector-public go with --inspector")
        return None, False
    given = token or (os.environ if environ is None else environ).get(TOKEN_VARIABLE) or None
    return InspectorSettings(token=given or new_token(), public=public), given is None


def export(settings: InspectorSettings | None) -> None:
    """Hand ``serve``'s settings to its worker processes."""
    for name in (_ON_VARIABLE, PUBLIC_VARIABLE):
        os.environ.pop(name, None)
    if settings is not None and settings.token is not None:
        os.environ[_ON_VARIABLE] = "1"
        os.environ[TOKEN_VARIABLE] = settings.token
        if settings.public:
            os.environ[PUBLIC_VARIABLE] = "1"


def settings_from_environment() -> InspectorSettings | None:
    """In a ``serve`` worker: the settings its supervisor handed over (None when off)."""
    token = os.environ.get(TOKEN_VARIABLE)
    if not os.environ.get(_ON_VARIABLE) or not token:
        return None
    return InspectorSettings(token=token, public=bool(os.environ.get(PUBLIC_VARIABLE)))


class Inspector:
    """The ASGI app of every path under :data:`PREFIX` (given ``None`` settings: off)."""

    def __init__(self, gateway: Inspected, settings: InspectorSettings | None) -> None:
        self.settings = settings
        api = InspectorApi(gateway)
        self._router = Router(
            [
                Route(PREFIX, self._page),
                Route(PREFIX + "/", self._page),
                Route(PREFIX + "/static/{name}", self._static),
                Mount(PREFIX + "/api", routes=api.routes()),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._router(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        settings = self.settings
        if settings is None or scope["type"] != "http":
            return PlainTextResponse("Not Found", status_code=404)
        if not settings.public and not _loopback_client(scope):
            return PlainTextResponse("Not Found", status_code=404)
        request = Request(scope)
        if settings.token is None:
            if _host_name(request.headers.get("host", "")) not in _LOOPBACK_HOSTS:
                return json_response(
                    {"error": "forbidden", "message": "the inspector answers 127.0.0.1 only"}, 403
                )
            return None
        if _carries(request, settings.token):
            return None
        if scope["path"] in (PREFIX, PREFIX + "/") and "token" in request.query_params:
            offered = request.query_params["token"]
            if _same(offered, settings.token):
                moved = RedirectResponse(PREFIX, status_code=303)
                moved.set_cookie(
                    COOKIE,
                    settings.token,
                    path=PREFIX,
                    httponly=True,
                    samesite="strict",
                    secure=scope.get("scheme") == "https",
                )
                return moved
        return json_response(
            {
                "error": "unauthorized",
                "message": "the inspector needs its token: open"
                f" {PREFIX}?token=TOKEN once, or send Authorization: Bearer TOKEN",
            },
            401,
        )

    async def _page(self, request: Request) -> Response:
        return _file("index.html", "text/html; charset=utf-8")

    async def _static(self, request: Request) -> Response:
        name = request.path_params["name"]
        kind = _FILES.get(name)
        if kind is None:
            return PlainTextResponse("Not Found", status_code=404)
        return _file(name, kind)


def _file(name: str, kind: str) -> Response:
    return Response(
        (STATIC / name).read_bytes(),
        media_type=kind,
        headers={
            "cache-control": "no-store",
            "content-security-policy": _POLICY,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        },
    )


def _carries(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, offered = header.partition(" ")
    if scheme.lower() == "bearer" and _same(offered.strip(), token):
        return True
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and _same(cookie, token)


def _same(offered: str, token: str) -> bool:
    return hmac.compare_digest(offered.encode("utf-8", "replace"), token.encode("utf-8"))


def _host_name(header: str) -> str:
    """``Host``'s name without its port: ``[::1]:8787`` is ``[::1]``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.partition("]")[0] + "]"
    return header.partition(":")[0]


def _loopback_client(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)
