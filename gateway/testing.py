"""Test an app the way it runs: a real server on 127.0.0.1, real clients, and hooks into objects.

::

    from raydo.gateway.testing import start_app

    async def test_counter() -> None:
        async with start_app("examples/counter") as app:
            reply = await app.http.post("/counter/a/increment")
            assert reply.json()["value"] == 1
            assert await app.sql("COUNTER", "a", "SELECT 1 AS one") == [{"one": 1}]
            await app.evict("COUNTER", "a")
            assert await app.list_ids("COUNTER") == [str(app.env.COUNTER.id_from_name("a"))]

What :func:`start_app` does, in order: loads the app's ``raydo.toml``; gives it a fresh
temporary storage folder (unless ``storage=`` names one: the app's own is never touched by
default, so a test starts from nothing every time, beside a running ``raydo dev`` too); builds
its gateway, which claims that folder for this runtime (``FolderInUse`` if another holds it), with
hosts in this process (the default) or on Ray (``ray=True`` joins the Ray this process is
connected to, or starts a local one; ``ray="host:port"`` joins that cluster); serves it with
uvicorn on a free port of 127.0.0.1 in the running event loop; and yields a :class:`TestApp`.
On exit the server stops and the hosts close (in-process: the temporary folder is then
removed) or stay (Ray: they keep the folder and its lock until they are killed).

The hooks (``run_alarm``, ``evict``, ``sql``) travel to the object's host as events, so they
take their turn like any other event and never race the object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from raydo.actors import Env, Namespace, ObjectId
from raydo.actors.placement import (
    LocalPlacement,
    join_ray,
    ray_placement,
    ray_runtime,
    start_local_ray,
    stop_ray_hosts,
)
from raydo.storage import codec, layout

from ._http_protocol import BoundedHttpProtocol
from ._ws_protocol import LeanWebSocketProtocol
from .app import Gateway
from .config import AppConfig, load_config
from .inspector import InspectorSettings
from .metrics import MetricsOptions


class _Storage(enum.Enum):
    CONFIGURED = "configured"


#: ``start_app(path, storage=CONFIGURED_STORAGE)``: the folder the app's ``raydo.toml`` names.
CONFIGURED_STORAGE = _Storage.CONFIGURED


@dataclass
class TestApp:
    """A running app: its URL, an HTTP client bound to it, its ``env``, and object hooks."""

    __test__ = False  # not a pytest test class

    config: AppConfig
    gateway: Gateway
    url: str
    http: httpx.AsyncClient

    @property
    def env(self) -> Env:
        """The app's bindings, as its handlers see them."""
        return self.gateway.env

    @property
    def metrics_url(self) -> str:
        """The Prometheus endpoint's URL (``start_app(..., metrics=True)`` only)."""
        endpoint = self.gateway.metrics_endpoint
        if endpoint is None:
            raise RuntimeError("no metrics endpoint: start the app with start_app(metrics=True)")
        return endpoint.url

    def websocket_url(self, path: str) -> str:
        """The ``ws://`` URL of ``path`` on this app (for any WebSocket client)."""
        return "ws" + self.url[len("http") :] + path

    def websocket(self, path: str, **options: Any) -> Any:
        """A WebSocket client connected to ``path``: ``async with app.websocket("/ws") as ws``.

        Uses the ``websockets`` library (a test dependency); ``options`` go to its ``connect``.
        """
        import websockets

        return websockets.connect(self.websocket_url(path), **options)

    def _namespace(self, binding: str) -> Namespace:
        namespace = getattr(self.env, binding)
        if not isinstance(namespace, Namespace):
            raise TypeError(f"{binding} is not a Durable Object binding")
        return namespace

    def _id(self, binding: str, target: str | ObjectId) -> ObjectId:
        if isinstance(target, ObjectId):
            return target
        return self._namespace(binding).id_from_name(target)

    async def run_alarm(self, binding: str, target: str | ObjectId) -> bool:
        """Run the object's alarm now, whenever it is due; True when one was set and ran."""
        namespace = self._namespace(binding)
        ran = await namespace.control(self._id(binding, target), "alarm")
        return bool(ran)

    async def evict(self, binding: str, target: str | ObjectId) -> bool:
        """Evict the object once its current work is done: its next event constructs it anew."""
        namespace = self._namespace(binding)
        return bool(await namespace.control(self._id(binding, target), "evict"))

    async def sql(
        self, binding: str, target: str | ObjectId, query: str, *params: Any
    ) -> list[dict[str, Any]]:
        """Run SQL on one object's storage, in a turn of its own; the rows as dicts."""
        namespace = self._namespace(binding)
        packed = await namespace.control(self._id(binding, target), "sql", query, list(params))
        rows: list[dict[str, Any]] = codec.decode(packed)["rows"]
        return rows

    async def list_ids(self, binding: str) -> list[str]:
        """The ids of every object of ``binding`` that has storage, sorted."""
        namespace = self._namespace(binding)
        found = []
        for object_hex in layout.object_hexes(self.config.storage, namespace.name):
            try:
                found.append(str(namespace.id_from_string(object_hex)))
            except ValueError:  # not an id of this namespace
                continue
        return sorted(found)


@asynccontextmanager
async def start_app(
    path: str | os.PathLike[str],
    *,
    ray: bool | str = False,
    metrics: bool = False,
    storage: str | os.PathLike[str] | _Storage | None = None,
    inspector: InspectorSettings | None = None,
) -> AsyncIterator[TestApp]:
    """Serve the app in ``path`` on 127.0.0.1 for the duration of the block (with a metrics
    endpoint on a free port of 127.0.0.1 when ``metrics``: see ``TestApp.metrics_url``).

    Its storage is a new temporary folder, or ``storage`` when given: a folder, or
    :data:`CONFIGURED_STORAGE` for the one the app's ``raydo.toml`` names (data then outlives
    the block, for a test that restarts the app). With ``ray``, the app's hosts are stopped
    when the block ends (in order: their turns end and their files close), so the next
    ``start_app`` of the app starts its own. ``inspector`` serves the inspector at
    ``/_raydo/inspector`` with those settings (``InspectorSettings()``: as ``raydo dev``
    does; with a token: as ``raydo serve --inspector``)."""
    config = load_config(path)
    temporary = None
    if storage is None:
        temporary = Path(tempfile.mkdtemp(prefix=f"raydo-{config.name}-"))
        config = dataclasses.replace(config, storage=temporary)
    elif not isinstance(storage, _Storage):
        config = dataclasses.replace(config, storage=Path(storage).resolve())
    try:
        async with _serve(config, ray=ray, metrics=metrics, inspector=inspector) as app:
            yield app
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


@asynccontextmanager
async def _serve(
    config: AppConfig, *, ray: bool | str, metrics: bool, inspector: InspectorSettings | None
) -> AsyncIterator[TestApp]:
    options = MetricsOptions(port=0) if metrics else None
    if ray is False:
        gateway = Gateway(
            config, LocalPlacement, metrics=options, dev_routes=True, inspector=inspector
        )
    else:

        def connect() -> None:
            import ray as ray_module

            if isinstance(ray, str):
                join_ray(ray)
            elif not ray_module.is_initialized():
                start_local_ray()

        gateway = Gateway(
            config,
            ray_placement,
            on_start=connect,
            metrics=options,
            runtime=ray_runtime,
            dev_routes=True,
            inspector=inspector,
        )
    # Bound now, before start-up (which may take seconds on Ray): nobody can take the port.
    listener = socket.socket()
    # Accepted sockets inherit it: without it a kept-alive connection's every response after
    # the first waits ~40 ms for the client's delayed ACK.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            gateway,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            ws_max_size=config.limits.websocket_message_bytes,
            ws_per_message_deflate=False,
            ws=LeanWebSocketProtocol,  # as raydo dev and serve: accepted sockets leave ASGI
            http=BoundedHttpProtocol,  # and the same bounds on HTTP heads and connections
        )
    )
    # Started here rather than in uvicorn's lifespan, so a refusal (the folder is in use, a
    # cluster out of reach) reaches the test as itself, not as uvicorn's exit.
    try:
        gateway.start()
    except BaseException:
        listener.close()
        await gateway.stop()
        raise
    serving = asyncio.ensure_future(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises why it stopped
                raise RuntimeError("the test server stopped before it started")
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            yield TestApp(config, gateway, url, http)
    finally:
        server.should_exit = True
        try:
            await serving
        finally:
            await gateway.stop()  # done already unless start-up failed: the folder is let go
            if ray is not False:
                # Ray hosts are detached actors, made for this block's storage: left running,
                # the app's next start_app (another test's, on a new folder) would find them
                # and read and write this one's data.
                await asyncio.to_thread(stop_ray_hosts, gateway.spec)
