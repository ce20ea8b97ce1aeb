"""The inspector's JSON routes (``/_raydo/inspector/api/...``): what the page shows.

Each route reads what the CLI reads, through the same functions: objects' files through
:mod:`gateway.inspection` (read-only, as ``raydo objects``), queues through
:mod:`gateway.cli_queues`, blob buckets through the app's own ``env`` binding (its
``list``), the hosts' numbers through ``Placement.host_metrics`` (as the Prometheus
endpoint). Every parameter is checked before anything is read: bindings, queues and
buckets must be ones the config names, ids are 64 hex digits, names, keys and tables have
bounded lengths and no NUL, page sizes are capped; a bad one is a 400 with a message. Names
and keys only ever reach the disk hashed (an object's id), never as a path.

File reads run in a worker thread, so a slow folder never holds up the gateway's loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from raydo.actors import Env, ObjectId, RuntimeSpec
from raydo.actors.placement import Placement
from raydo.storage.blobs import BlobError
from raydo.storage.limits import LimitExceeded

from . import cli_queues, inspection
from .config import AppConfig

#: Most rows, objects, pairs or keys one page holds.
MAX_PAGE = 200
DEFAULT_PAGE = 50
#: Longest SQL the console takes, and how long a statement may run.
MAX_SQL_CHARS = 10_000
SQL_SECONDS = 5.0
#: Longest name, key, table name or cursor taken.
MAX_TEXT = 2048
_MAX_OFFSET = 100_000_000
_HEX_ID = re.compile(r"[0-9a-f]{64}")


class BadRequest(ValueError):
    """A parameter the inspector does not take: answered 400 with its message."""


class Inspected(Protocol):
    """What the inspector reads of a gateway (:class:`gateway.app.Gateway` is one)."""

    config: AppConfig
    spec: RuntimeSpec

    @property
    def env(self) -> Env: ...

    @property
    def placement(self) -> Placement | None: ...


def json_response(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, default=str),
        status_code=status,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


def _text(request: Request, name: str, *, required: bool = True) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is required")
        return None
    _check_text(name, value)
    return value


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{name} is a string")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{name} is at most {MAX_TEXT} characters")
    if "\0" in value:
        raise BadRequest(f"{name} has a NUL character")
    return value


def _number(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or len(text) > 12:
        raise BadRequest(f"{name} is a whole number from {low} to {high}, not {text[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"{name} is a whole number from {low} to {high}, not {value}")
    return value


def _limit(request: Request) -> int:
    return _number(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)


class InspectorApi:
    """The JSON routes over one gateway."""

    def __init__(self, gateway: Inspected) -> None:
        self._gateway = gateway

    @property
    def config(self) -> AppConfig:
        return self._gateway.config

    def routes(self) -> list[Route]:
        handlers: dict[str, Callable[[Request], Awaitable[Any]]] = {
            "/bindings": self.bindings,
            "/objects": self.objects,
            "/object": self.object,
            "/object/table": self.table,
            "/object/kv": self.kv,
            "/queues": self.queues,
            "/queue": self.queue,
            "/bucket": self.bucket,
            "/metrics": self.metrics,
        }
        routes = [Route(path, _answering(handler)) for path, handler in handlers.items()]
        routes.append(Route("/object/sql", _answering(self.sql), methods=["POST"]))
        return routes

    # ---- the app's bindings ---------------------------------------------------------------

    async def bindings(self, request: Request) -> Any:
        config = self.config
        return {
            "app": config.name,
            "objects": [
                {"name": b.name, "class_name": b.class_name, "internal": b.internal}
                for b in self._gateway.spec.bindings
            ],
            "databases": [str(d["binding"]) for d in config.d1_databases],
            "buckets": [str(b["binding"]) for b in config.r2_buckets],
            "kv_namespaces": [str(k["binding"]) for k in config.kv_namespaces],
            "queues": cli_queues.queue_names(config),
        }

    # ---- objects --------------------------------------------------------------------------

    def _binding(self, request: Request) -> str:
        binding = _text(request, "binding")
        assert binding is not None
        known = [b.name for b in self._gateway.spec.bindings]
        if binding not in known:
            raise BadRequest(
                f"no Durable Object binding {binding[:100]!r} (bindings: {', '.join(known)})"
            )
        return binding

    def _target(self, request: Request) -> ObjectId:
        """The object ``?id=`` (64 hex) or ``?name=`` names, of ``?binding=``."""
        binding = self._binding(request)
        hex_id = _text(request, "id", required=False)
        name = _text(request, "name", required=False)
        if (hex_id is None) == (name is None):
            raise BadRequest("give the object's id or its name (one of them)")
        if hex_id is not None:
            if not _HEX_ID.fullmatch(hex_id):
                raise BadRequest("id is 64 lowercase hex digits")
            try:
                return inspection.object_id(self.config, binding, hex_id)
            except ValueError as exc:
                raise BadRequest(f"id: {exc}") from None
        assert name is not None
        try:
            return inspection.object_id(self.config, binding, name, by_name=True)
        except (ValueError, LimitExceeded) as exc:
            raise BadRequest(f"name: {exc}") from None

    async def objects(self, request: Request) -> Any:
        binding = self._binding(request)
        after = _text(request, "after", required=False)
        if after is not None and not _HEX_ID.fullmatch(after):
            raise BadRequest("after is an object's id (64 lowercase hex digits)")
        limit = _limit(request)
        found = await asyncio.to_thread(
            inspection.list_objects, self.config, binding, after=after, limit=limit
        )
        return {
            "binding": binding,
            "objects": [
                {
                    "id": o.id,
                    "name": o.name,
                    "size_bytes": o.size_bytes,
                    "last_write": o.last_write.isoformat(),
                    "alarm": None if o.alarm is None else o.alarm.isoformat(),
                    "unreadable": o.unreadable,
                }
                for o in found
            ],
            "next": found[-1].id if len(found) == limit else None,
        }

    async def object(self, request: Request) -> Any:
        target = self._target(request)
        shown = await asyncio.to_thread(inspection.show_object, self.config, target)
        shown.pop("file", None)  # where the folder is is the operator's business, not the page's
        placement = self._gateway.placement
        hub = placement.hub if placement is not None else None
        for sock in shown["sockets"]:
            sock["here"] = hub is not None and sock["gateway"] == hub.gateway_id
        return {"binding": target.namespace, **shown}

    async def table(self, request: Request) -> Any:
        target = self._target(request)
        table = _text(request, "table")
        offset = _number(request, "offset", 0, 0, _MAX_OFFSET)
        return await asyncio.to_thread(
            inspection.table_rows,
            self.config,
            target,
            str(table),
            offset=offset,
            limit=_limit(request),
        )

    async def kv(self, request: Request) -> Any:
        target = self._target(request)
        after = _text(request, "after", required=False)
        limit = _limit(request)
        pairs = await asyncio.to_thread(
            inspection.kv_pairs, self.config, target, after=after, limit=limit
        )
        return {"pairs": pairs, "next": pairs[-1]["key"] if len(pairs) == limit else None}

    async def sql(self, request: Request) -> Any:
        """``POST {"binding", "id" | "name", "query"}``: the query run read-only."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise BadRequest("send the query as JSON (content-type: application/json)")
        body = await request.body()
        if len(body) > 4 * MAX_SQL_CHARS + MAX_TEXT:
            raise BadRequest(f"the query is at most {MAX_SQL_CHARS} characters")
        try:
            asked = json.loads(body)
        except ValueError:
            raise BadRequest("the body is not JSON") from None
        if not isinstance(asked, dict):
            raise BadRequest('the body is {"binding", "id" or "name", "query"}')
        query = asked.get("query")
        if not isinstance(query, str) or not query.strip():
            raise BadRequest("query is a non-empty string")
        if len(query) > MAX_SQL_CHARS:
            raise BadRequest(f"the query is at most {MAX_SQL_CHARS} characters")
        params = {k: asked[k] for k in ("binding", "id", "name") if asked.get(k) is not None}
        for key, value in params.items():
            _check_text(key, value)
        target = self._target(_Params(params))  # type: ignore[arg-type]
        started = time.monotonic()
        names, rows = await asyncio.to_thread(
            inspection.run_sql,
            self.config,
            target,
            query,
            max_rows=MAX_PAGE + 1,
            seconds=SQL_SECONDS,
            read_only_hint=" (the inspector's console is read-only)",
        )
        return {
            "columns": names,
            "rows": [[inspection.jsonable(v) for v in row] for row in rows[:MAX_PAGE]],
            "truncated": len(rows) > MAX_PAGE,
            "seconds": round(time.monotonic() - started, 4),
        }

    # ---- queues ---------------------------------------------------------------------------

    def _queue(self, request: Request) -> str:
        queue = _text(request, "queue")
        known = cli_queues.queue_names(self.config)
        if queue not in known:
            raise BadRequest(
                f"no queue {str(queue)[:100]!r} (queues: {', '.join(known) or 'none'})"
            )
        return str(queue)

    async def queues(self, request: Request) -> Any:
        config = self.config
        dead_letter_of = {
            str(c["dead_letter_queue"]): str(c["queue"])
            for c in config.queue_consumers
            if c.get("dead_letter_queue")
        }
        consumed = {str(c["queue"]): c.get("dead_letter_queue") for c in config.queue_consumers}

        def read() -> list[dict[str, Any]]:
            return [
                {
                    **asdict(cli_queues.queue_counts(config, name)),
                    "dead_letter_queue": consumed.get(name),
                    "dead_letters_of": dead_letter_of.get(name),
                }
                for name in cli_queues.queue_names(config)
            ]

        return {"queues": await asyncio.to_thread(read)}

    async def queue(self, request: Request) -> Any:
        queue = self._queue(request)
        limit = _limit(request)
        config = self.config

        def read() -> dict[str, Any]:
            counts = cli_queues.queue_counts(config, queue)
            return {**asdict(counts), "messages": cli_queues.peek(config, queue, limit)}

        return await asyncio.to_thread(read)

    # ---- blob buckets ---------------------------------------------------------------------

    async def bucket(self, request: Request) -> Any:
        binding = _text(request, "binding")
        known = [str(b["binding"]) for b in self.config.r2_buckets]
        if binding not in known:
            raise BadRequest(
                f"no blob bucket binding {str(binding)[:100]!r}"
                f" (buckets: {', '.join(known) or 'none'})"
            )
        prefix = _text(request, "prefix", required=False) or ""
        cursor = _text(request, "cursor", required=False)
        bucket = getattr(self._gateway.env, str(binding))
        try:
            page = await bucket.list(prefix=prefix, cursor=cursor, limit=_limit(request))
        except BlobError as exc:
            raise BadRequest(str(exc)) from None
        return {
            "binding": binding,
            "keys": [
                {"key": o.key, "size": o.size, "uploaded": o.uploaded.isoformat()}
                for o in page.objects
            ],
            "next": page.cursor if page.truncated else None,
        }

    # ---- the hosts' numbers ---------------------------------------------------------------

    async def metrics(self, request: Request) -> Any:
        """Every host's counters now: the page takes differences between two polls for
        events per second and p99 (over the duration buckets of all kinds of event)."""
        placement = self._gateway.placement
        snapshots = [] if placement is None else await placement.host_metrics()
        hosts = []
        bounds: list[float] = []
        for snapshot in snapshots:
            if not snapshot.get("up", True):
                hosts.append({"binding": snapshot.get("binding"), "host": snapshot.get("host")})
                continue
            bounds = list(snapshot["bounds"])
            buckets = [0] * (len(bounds) + 1)
            for row in snapshot["durations"].values():
                for i, count in enumerate(row[:-1]):
                    buckets[i] += count
            hosts.append(
                {
                    "binding": snapshot["binding"],
                    "host": snapshot["host"],
                    "up": True,
                    "events": sum(snapshot["events"].values()),
                    "errors": sum(snapshot["errors"].values()),
                    "live_objects": snapshot["live_objects"],
                    "mailbox_depth": snapshot["mailbox_depth"],
                    "mailbox_depth_max": snapshot["mailbox_depth_max"],
                    "buckets": buckets,
                }
            )
        return {"time": time.time(), "bounds": bounds, "hosts": hosts}


class _Params:
    """A JSON body's fields where a route reads query parameters."""

    def __init__(self, params: dict[str, str]) -> None:
        self.query_params = params


def _answering(
    handler: Callable[[Request], Awaitable[Any]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return json_response(await handler(request))
        except BadRequest as exc:
            return json_response({"error": "bad_request", "message": str(exc)}, 400)
        except inspection.InspectionError as exc:
            return json_response({"error": "refused", "message": str(exc)}, 400)
        except cli_queues.QueueNotFound as exc:
            return json_response({"error": "bad_request", "message": str(exc)}, 400)
        except (sqlite3.Error, OSError) as exc:  # a file that cannot be read now
            return json_response({"error": "unreadable", "message": str(exc)}, 500)

    return endpoint
