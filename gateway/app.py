"""The gateway: the user's Starlette app, served with its bindings and its limits.

What happens, in order:

1. :class:`Gateway` loads nothing itself: it is given the config and a placement factory,
   imports the app named by ``main`` and every object class (so mistakes fail at start-up).
2. On ASGI lifespan start-up it runs ``on_start`` (joining Ray, for instance), claims the
   storage folder for its runtime (:mod:`storage.folder_lock`: one runtime per folder), builds the
   placement and the ``env``, starts the hosts that must always run (their alarms fire
   without traffic) and the metrics endpoint if one was asked for (:mod:`gateway.metrics`),
   then lets the user app start.
3. Requests under ``/_raydo/`` go to the routes platform bindings serve themselves (a
   blob store's presigned URLs, for instance), or under ``/_raydo/inspector`` to the
   inspector (:mod:`gateway.inspector`, 404 while it is off), never to the user app.
4. Each HTTP or WebSocket connection gets ``scope["state"]["env"]``, so handlers reach
   bindings as ``request.state.env.ROOM``. A request body declared longer than
   ``limits.stream_bytes`` gets 413 before the app runs; the app itself reads at most
   ``limits.request_bytes`` of a body (then 413), unless it hands the request to an object
   (``stub.fetch(request)``), which streams it there and counts it against ``stream_bytes``
   (the request's :class:`~raydo.actors.BodyAllowance`). Responses pass through unbuffered,
   so an object's streamed reply (server-sent events, say) reaches the client chunk by chunk.
5. Errors from objects that escape a handler become JSON responses with a fitting status
   (overloaded, unavailable and a full disk: 503; limits: 413; the rest: 500). Every HTTP
   request is counted, and traced when a tracer is configured.
6. On shutdown the user app stops first, then the placement closes its connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Router
from starlette.types import Message, Receive, Scope, Send

from raydo.actors import (
    BODY_ALLOWANCE,
    BodyAllowance,
    Env,
    HostUnavailable,
    Overloaded,
    RaydoError,
    RemoteStorageFull,
    RuntimeSpec,
    env_bindings,
)
from raydo.actors.placement import Placement, freeze_startup_heap
from raydo.bindings.assets import AssetServer, AssetSettings
from raydo.bindings.cron import CronError, check_cron, run_scheduled, start_schedule
from raydo.bindings.d1 import D1Error
from raydo.storage import StorageFull
from raydo.storage.blobs import BlobError
from raydo.storage.folder_lock import FolderLock, process_runtime
from raydo.storage.limits import LimitExceeded, Limits

from .access_log import log_request
from .class_migrations import apply_class_migrations
from .config import AppConfig
from .inspector import PREFIX as INSPECTOR_PREFIX
from .inspector import Inspector, InspectorSettings
from .metrics import GatewayMetrics, MetricsEndpoint, MetricsOptions, observe_http
from .runtime import check_classes, check_replication, load_app, runtime_spec

PlacementFactory = Callable[[RuntimeSpec], Placement]


#: Where platform bindings serve their own routes; the user app never sees these paths.
PLATFORM_PREFIX = "/_raydo/"
#: wrangler's routes that run the scheduled handler on demand (``dev_routes`` only).
SCHEDULED_PATHS = ("/__scheduled", "/cdn-cgi/handler/scheduled")


class Gateway:
    """ASGI app wrapping the user's app with ``env`` and request limits."""

    def __init__(
        self,
        config: AppConfig,
        placement_factory: PlacementFactory,
        *,
        on_start: Callable[[], None] | None = None,
        metrics: MetricsOptions | None = None,
        runtime: Callable[[], str] = process_runtime,
        access_log: bool = False,
        dev_routes: bool = False,
        inspector: InspectorSettings | None = None,
    ) -> None:
        self.config = config
        self.dev_routes = dev_routes
        """Serve wrangler's test routes (``/__scheduled?cron=...``): ``raydo dev`` and tests."""
        self.spec = runtime_spec(config)
        self.assets = (
            AssetServer(AssetSettings.from_options(config.assets)) if config.assets else None
        )
        """``[assets]``: the folder answered from in front of the app."""
        self.app = load_app(config)
        check_classes(config)
        _install_error_handlers(self.app)
        self._placement_factory = placement_factory
        self._on_start = on_start
        self._runtime = runtime
        self.access_log = access_log
        self._folder_lock: FolderLock | None = None
        self.placement: Placement | None = None
        self._env: Env | None = None
        self._platform_routes: Router | None = None
        self.metrics = GatewayMetrics()
        self.metrics_options = metrics
        self.metrics_endpoint: MetricsEndpoint | None = None
        self.inspector = Inspector(self, inspector)
        """``/_raydo/inspector`` (:mod:`gateway.inspector`): off while its settings are None."""

    @property
    def http_limits(self) -> Limits:
        """The limits the front door holds connections to (see :mod:`._http_protocol`)."""
        return self.config.limits

    @property
    def env(self) -> Env:
        if self._env is None:
            self.start()
        assert self._env is not None
        return self._env

    def start(self) -> None:
        """Run ``on_start``, claim the storage folder for this runtime (``runtime()`` says
        which: raises :class:`~raydo.storage.folder_lock.FolderInUse` when another runtime
        holds it), check the replication store (``StoreUnusable``), then build the placement
        and env (idempotent)."""
        if self.placement is None:
            if self._on_start is not None:
                self._on_start()
            self.claim_folder()
            apply_class_migrations(self.config)  # a wrangler config's, each once
            check_replication(self.config)  # a store out of reach fails before serving
            self.placement = self._placement_factory(self.spec)
            self._env = self.placement.env
            routes: list[BaseRoute] = []
            for binding in env_bindings(self._env).values():
                routes += getattr(binding, "gateway_routes", list)()
            self._platform_routes = Router(routes) if routes else None
            freeze_startup_heap()

    async def stop(self) -> None:
        if self.metrics_endpoint is not None:
            endpoint, self.metrics_endpoint = self.metrics_endpoint, None
            await asyncio.to_thread(endpoint.stop)  # waits out a scrape in progress
        if self.placement is not None:
            placement, self.placement, env = self.placement, None, self._env
            self._env = self._platform_routes = None
            # Bindings first (they may hold clients and caches), then the hosts' links.
            for binding in env_bindings(env).values() if env is not None else ():
                aclose = getattr(binding, "aclose", None)
                if aclose is not None:
                    await aclose()
            await placement.close()
        self.release_folder()

    def claim_folder(self) -> None:
        """Claim the storage folder for this runtime (``runtime()`` says which); raises
        :class:`~raydo.storage.folder_lock.FolderInUse` when another runtime holds it."""
        if self._folder_lock is None:
            lock = FolderLock(self.config.storage, self._runtime())
            lock.acquire()
            self._folder_lock = lock

    def release_folder(self) -> None:
        """Let go of the folder (at stop; or when the cluster whose runtime held it is lost,
        so that the cluster the gateway rejoins can claim it)."""
        if self._folder_lock is not None:
            lock, self._folder_lock = self._folder_lock, None
            lock.release()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # counted, and traced when a tracer is configured
            if self.access_log:
                await log_request(self._observed, scope, receive, send)
            else:
                await self._observed(scope, receive, send)
        else:
            await self._serve(scope, receive, send)

    async def _observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        await observe_http(self.metrics, self._serve, scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        scope.setdefault("state", {})["env"] = self.env
        path = scope["path"]
        if path == INSPECTOR_PREFIX or path.startswith(INSPECTOR_PREFIX + "/"):
            await self.inspector(scope, receive, send)
            return
        if self._platform_routes is not None and scope["path"].startswith(PLATFORM_PREFIX):
            await self._platform_routes(scope, receive, send)
            return
        if kind == "http" and self.dev_routes and scope["path"] in SCHEDULED_PATHS:
            await self._run_scheduled(scope, receive, send)
            return
        assets = self.assets
        if kind == "http" and assets is not None and await assets.serve_first(scope, receive, send):
            return
        if kind == "http":
            limits = self.config.limits
            declared = _content_length(scope)
            if declared is not None and declared > limits.stream_bytes:
                refusal = _too_large(declared, limits.stream_bytes, "stream_bytes")
                await refusal(scope, receive, send)
                return
            allowance = BodyAllowance(limits.request_bytes)
            scope[BODY_ALLOWANCE] = allowance
            receive, send = _limit_body(receive, send, allowance, scope)
        await self.app(scope, receive, send)

    async def _run_scheduled(self, scope: Scope, receive: Receive, send: Send) -> None:
        """wrangler's test route: run the ``scheduled`` handler once, now, for ``?cron=``
        (by default the first configured expression)."""
        request = Request(scope, receive)
        crons = self.config.crons
        cron = request.query_params.get("cron") or (crons[0] if crons else "")
        response: Response
        if not crons:
            response = PlainTextResponse("this app has no cron triggers", status_code=404)
        else:
            try:
                cron = check_cron(cron)
            except CronError as exc:
                response = PlainTextResponse(str(exc), status_code=400)
            else:
                assert self.placement is not None
                ok = await run_scheduled(self.placement, self.spec, cron)
                response = (
                    PlainTextResponse("Ran scheduled event")
                    if ok
                    else PlainTextResponse(
                        "the scheduled handler raised (see the log)", status_code=500
                    )
                )
        await response(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                assert self.placement is not None
                # Standing hosts start (and settle on their nodes) before serving begins, so
                # no request meets a host that is being moved.
                await self.placement.start()
                await start_schedule(self.placement, self.spec)  # cron triggers armed
                if self.metrics_options is not None:
                    self.metrics_endpoint = MetricsEndpoint.start(self, self.metrics_options)
            return message

        async def send_(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.stop()
            await send(message)

        await self.app(scope, receive_, send_)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(size: int | None, limit: int, name: str = "request_bytes") -> Response:
    what = f"{size} bytes" if size is not None else "over the limit"
    return JSONResponse(
        {
            "error": "request_too_large",
            "limit": name,
            "message": f"the request body is {what}; at most {limit} bytes are allowed"
            f" (limit {name})",
        },
        status_code=413,
        # The connection's state after a refused body is not worth trusting: start afresh.
        headers={"connection": "close"},
    )


def _limit_body(
    receive: Receive, send: Send, allowance: BodyAllowance, scope: Scope
) -> tuple[Receive, Send]:
    """Count body bytes as the app reads them; past ``request_bytes`` answer 413 and end the
    request, unless a stub streams the body to an object (which counts it itself).

    The rest of the body is read and dropped (up to a few times the limit) before the 413 is
    sent, so the client, still sending, gets to read it instead of a reset connection.
    """
    seen = 0
    refused = False
    started = False
    limit = allowance.buffered
    declared = _content_length(scope)

    async def receive_() -> Message:
        nonlocal seen, refused
        if declared is not None and declared > limit and not refused and not allowance.streamed:
            # Read by the app itself, a body declared too long is refused before any of it.
            refused = True
            if declared <= _DRAIN_FACTOR * limit:  # let the client finish sending first
                await _drain(receive)
            if not started:
                await _too_large(declared, limit)(scope, _nothing, send)
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit and not refused and not allowance.streamed:
                refused = True
                # The rest is read first: answered while it still sends, a client whose
                # connection then closes would see a reset instead of the 413.
                if message.get("more_body"):
                    await _drain(receive, _DRAIN_FACTOR * limit)
                if not started:
                    await _too_large(None, limit)(scope, _nothing, send)
                return {"type": "http.disconnect"}
        return message

    async def send_(message: Message) -> None:
        nonlocal started
        if refused:
            return
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    return receive_, send_


_DRAIN_FACTOR = 4


async def _drain(receive: Receive, most: int | None = None) -> None:
    """Read and drop the rest of a refused request body (at most ``most`` bytes)."""
    dropped = 0
    while True:
        message = await receive()
        dropped += len(message.get("body", b""))
        if not message.get("more_body") or (most is not None and dropped > most):
            return


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


_STATUS = {
    Overloaded: 503,
    HostUnavailable: 503,
    RemoteStorageFull: 503,
}
STORAGE_FULL_RETRY_AFTER = "30"
"""Seconds a client is asked to wait after a full disk (freeing space takes an operator)."""


def _install_error_handlers(app: Any) -> None:
    """Map raydo's errors to HTTP answers on a Starlette app, unless the app chose its own."""
    if not isinstance(app, Starlette):
        return
    handlers = app.exception_handlers
    if RaydoError not in handlers:
        app.add_exception_handler(RaydoError, _raydo_error)
    if LimitExceeded not in handlers:
        app.add_exception_handler(LimitExceeded, _limit_error)
    if D1Error not in handlers:
        app.add_exception_handler(D1Error, _database_error)
    if BlobError not in handlers:
        app.add_exception_handler(BlobError, _blob_error)
    if StorageFull not in handlers:
        app.add_exception_handler(StorageFull, _storage_full)


async def _raydo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RaydoError)
    if isinstance(exc, LimitExceeded):  # a limit breached inside an object
        return await _limit_error(request, exc)
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
    body = {"error": exc.code, "message": str(exc), "retryable": exc.retryable}
    headers = {"retry-after": "1"} if isinstance(exc, HostUnavailable) and exc.retryable else None
    if isinstance(exc, RemoteStorageFull):
        headers = {"retry-after": STORAGE_FULL_RETRY_AFTER}
    return JSONResponse(body, status_code=status, headers=headers)


async def _storage_full(request: Request, exc: Exception) -> Response:
    """The disk under this process's storage (a blob bucket's, say) is full: try later."""
    return JSONResponse(
        {"error": "storage_full", "message": str(exc), "retryable": True},
        status_code=503,
        headers={"retry-after": STORAGE_FULL_RETRY_AFTER},
    )


async def _limit_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LimitExceeded)
    return JSONResponse(
        {"error": "limit_exceeded", "limit": exc.limit, "message": str(exc)}, status_code=413
    )


async def _database_error(request: Request, exc: Exception) -> Response:
    """A database statement failed: 413 when a limit was breached, else 500; SQLite's code."""
    assert isinstance(exc, D1Error)
    if exc.limit is not None:
        return JSONResponse(
            {"error": "limit_exceeded", "limit": exc.limit, "message": exc.message},
            status_code=413,
        )
    return JSONResponse(
        {"error": "database_error", "message": exc.message, "code": exc.code}, status_code=500
    )


async def _blob_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BlobError)
    return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=500)
