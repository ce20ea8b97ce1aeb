"""Everything raydo asks of Ray, in one place: start or join a cluster, run hosts as actors.

Each host is a detached, named Ray actor (``raydo:<app>:<binding>/shard/<n>``, or
``.../object/<id>`` for dedicated placement) with ``max_restarts=-1`` and
``max_task_retries=0``: Ray's name registry keeps one live host per name, restarts a host
that dies, and never runs a call twice. The actor runs a :class:`Host` on its own event loop
thread and serves the direct event stream of :mod:`actors._wire` on a TCP port; callers
learn the port and a token through one Ray call, ``endpoint()``, and reconnect the same way
after a restart.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import threading
import time
import traceback
from concurrent.futures import Future as ThreadFuture
from pathlib import Path
from typing import Any

import ray
import ray.exceptions

from raydo.storage.folder_lock import FolderLock

from . import _observe
from ._app_env import namespaces_env
from ._errors import HostUnavailable
from ._heap import freeze_startup_heap
from ._host import Host
from ._spec import HostKey, RuntimeSpec
from ._wire import HostLink, HostServerProtocol
from .types import Event
from .websockets import SocketHub

log = logging.getLogger("raydo.ray")

RAY_NAMESPACE = "raydo"
CONNECT_TIMEOUT_S = 60.0
RESPREAD_ATTEMPTS = 3


def start_local_ray(*, num_cpus: int | None = None) -> None:
    """Start an embedded single-node Ray for this process (``raydo dev``)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        ray.init(
            address="local",
            namespace=RAY_NAMESPACE,
            include_dashboard=False,
            num_cpus=num_cpus,
            log_to_driver=True,
            configure_logging=False,
        )


def join_ray(address: str) -> None:
    """Connect this process to a running Ray cluster (``raydo serve``)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        ray.init(
            address=address, namespace=RAY_NAMESPACE, log_to_driver=False, configure_logging=False
        )


def ray_runtime() -> str:
    """The runtime id of the Ray cluster this process is part of: its session's name, the
    same in every driver and worker of the cluster, new each time the cluster starts."""
    return f"ray:{ray.get_runtime_context().get_session_name()}"


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.new_event_loop()


class HostActor:
    """The Ray actor around one :class:`Host`; its methods are the control plane only."""

    def __init__(self, spec: RuntimeSpec, key: HostKey, bind: str) -> None:
        self._spec = spec
        self._key = key
        self._bind = bind
        self._error: str | None = None
        self._endpoint: tuple[str, int, str] | None = None
        self._host: Host | None = None
        self._folder_lock: FolderLock | None = None
        self._loop = _new_loop()
        started = threading.Event()
        threading.Thread(
            target=self._serve, args=(started,), name="raydo-host", daemon=True
        ).start()
        started.wait(60)

    def _serve(self, started: threading.Event) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start())
        except BaseException:  # noqa: BLE001 - reported by endpoint(), so callers see why
            self._error = traceback.format_exc()
        finally:
            started.set()
        loop.run_forever()

    async def _start(self) -> None:
        spec, key = self._spec, self._key
        # Every host of the cluster shares the folder's lock; a host of another runtime's
        # folder fails to start here (its error reaches callers through endpoint()).
        self._folder_lock = FolderLock(Path(spec.storage_root), ray_runtime())
        self._folder_lock.acquire()
        _observe.apply(spec.extra)  # before the host, so its spans and log records are made
        address = str(ray.util.get_node_ip_address()) if self._bind == "node" else self._bind  # type: ignore[no-untyped-call]
        placement = RayPlacement(spec, bind=self._bind)
        internal = spec.binding(key.binding).internal
        # On Ray the watchdog may end this process as its last resort: Ray restarts the host.
        env = placement.platform_env if internal else placement.env
        host = Host(spec, key, env, may_end_process=True)
        placement.local = (key, host)
        host.sockets.attach_gateway(placement.hub.gateway_id, placement.hub.pushes_from(key))
        host.start()
        token = secrets.token_hex(16)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: HostServerProtocol(host, token, key.label, spec.limits),
            address,
            0,
        )
        port = server.sockets[0].getsockname()[1]
        self._host = host
        self._endpoint = (address, port, token)
        freeze_startup_heap()

    def endpoint(self) -> tuple[str, int, str]:
        if self._error is not None or self._endpoint is None:
            raise RuntimeError(f"the host {self._key.label} failed to start:\n{self._error}")
        return self._endpoint

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        """The Ray node this host runs on."""
        return str(ray.get_runtime_context().get_node_id())

    def _run(self, fn: Any) -> Any:
        result: ThreadFuture[Any] = ThreadFuture()

        def call() -> None:
            try:
                result.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed back to the Ray caller
                result.set_exception(exc)

        self._loop.call_soon_threadsafe(call)
        return result.result(30)

    def metrics(self) -> dict[str, Any]:
        """The host's counters and gauges (``Host.metrics_snapshot``), plus its pid."""
        host = self._host
        if host is None:
            return {}
        snapshot: dict[str, Any] = self._run(host.metrics_snapshot)
        return {**snapshot, "pid": os.getpid()}

    def live_ids(self) -> list[str]:
        host = self._host
        return [] if host is None else self._run(host.live_ids)


_remote_host: Any = None


def _host_class() -> Any:
    global _remote_host
    if _remote_host is None:
        _remote_host = ray.remote(HostActor)
    return _remote_host


def _spread(key: HostKey) -> Any:
    """Where a new host should go: shard n prefers alive node n mod N (by node id), so hosts
    spread over the nodes for certain (Ray's SPREAD is best effort and may pack them), and
    losing a node loses a part. The preference is soft: when that node is gone, Ray places
    (and restarts) the host elsewhere."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = _alive_nodes()
    if len(nodes) < 2:
        return "DEFAULT"
    return NodeAffinitySchedulingStrategy(node_id=_preferred_node(key, nodes), soft=True)


def _alive_nodes() -> list[str]:
    """Ids of the cluster's alive nodes, sorted: the order shard preferences index into."""
    alive = ray.nodes()  # type: ignore[no-untyped-call]
    return sorted(str(node["NodeID"]) for node in alive if node.get("Alive"))


def _preferred_node(key: HostKey, nodes: list[str]) -> str:
    which = key.shard if key.object_hex is None else int(key.object_hex[:8], 16)
    return nodes[which % len(nodes)]


def actor_name(spec: RuntimeSpec, key: HostKey) -> str:
    return f"raydo:{spec.app_name}:{key.label}"


class RayPlacement:
    """Hosts in Ray actors, reached over direct streams; made on first use, found after restarts."""

    def __init__(self, spec: RuntimeSpec, *, bind: str = "127.0.0.1") -> None:
        self.spec = spec
        self.bind = bind
        self.env, self.platform_env = namespaces_env(self)
        self.hub = SocketHub(spec.limits)
        self.local: tuple[HostKey, Host] | None = None
        self._links: dict[HostKey, HostLink] = {}
        self._connecting: dict[HostKey, asyncio.Future[HostLink]] = {}
        self._handles: dict[HostKey, Any] = {}
        self._local_caller = os.urandom(8).hex()
        self._closing = False
        self._reconnecting: set[asyncio.Future[HostLink]] = set()
        self._local_seq = 0

    async def deliver(self, key: HostKey, event: Event) -> Any:
        local = self.local
        if local is not None and local[0] == key:
            event.caller = self._local_caller
            event.seq, self._local_seq = self._local_seq, self._local_seq + 1
            return await local[1].deliver(event)
        link = self._links.get(key)
        if link is None or link.closed:
            link = await self._link(key)
        return await link.call(event)

    def handle(self, key: HostKey) -> Any:
        """The Ray actor handle of a host, creating the host if it does not exist."""
        handle = self._handles.get(key)
        if handle is None:
            handle = (
                _host_class()
                .options(
                    name=actor_name(self.spec, key),
                    namespace=RAY_NAMESPACE,
                    lifetime="detached",
                    get_if_exists=True,
                    num_cpus=0,
                    max_restarts=-1,
                    max_task_retries=0,
                    max_concurrency=4,
                    scheduling_strategy=_spread(key),
                )
                .remote(self.spec, key, self.bind)
            )
            self._handles[key] = handle
        return handle

    async def _link(self, key: HostKey) -> HostLink:
        pending = self._connecting.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._connect(key))
            self._connecting[key] = pending
            pending.add_done_callback(lambda _: self._connecting.pop(key, None))
        return await asyncio.shield(pending)

    async def _connect(self, key: HostKey) -> HostLink:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        delay = 0.05
        while True:
            try:
                address, port, token = await self.handle(key).endpoint.remote()
                link = await HostLink.open(
                    address,
                    port,
                    token,
                    key.label,
                    self.spec.limits,
                    gateway=self.hub.gateway_id,
                    sockets=self.hub.sockets_on(key),
                    on_push=self.hub.pushes_from(key),
                    on_lost=functools.partial(self._lost, key),
                )
                self._links[key] = link
                return link
            except ray.exceptions.RayTaskError as exc:
                raise HostUnavailable(
                    f"the host {key.label} cannot start: {exc}", retryable=True
                ) from None
            except (TimeoutError, ray.exceptions.RayError, OSError, ConnectionError) as exc:
                if isinstance(exc, ray.exceptions.ActorDiedError):
                    self._handles.pop(key, None)
                if time.monotonic() > deadline:
                    raise HostUnavailable(
                        f"the host {key.label} is unreachable: {exc}", retryable=True
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def start(self) -> None:
        """Make sure every standing host runs (creating it if needed) and has armed its alarms."""
        keys = self.spec.standing_hosts()
        results = await asyncio.gather(
            *(self.handle(key).endpoint.remote() for key in keys), return_exceptions=True
        )
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                log.error("host %s did not start: %s", key.label, result)
        await self._respread(keys)

    async def _respread(self, keys: list[HostKey]) -> None:
        """Move standing hosts that landed off their preferred node while it is alive.

        Ray treats the node preference as a hint and, when that node looks busy, places the
        host elsewhere; then one node's loss would take more than its share. Each misplaced
        host is re-created once, at start-up, before it holds anything in memory.
        """
        nodes = _alive_nodes()
        if len(nodes) < 2:
            return
        for key in keys:
            for _ in range(RESPREAD_ATTEMPTS):
                if not await self._recreate_if_misplaced(key, nodes):
                    break

    async def _recreate_if_misplaced(self, key: HostKey, nodes: list[str]) -> bool:
        """True when the host was off its preferred node and was re-created."""
        try:
            where = await self.handle(key).node_id.remote()
        except ray.exceptions.RayError:
            return False
        if where == _preferred_node(key, nodes):
            return False
        log.info("re-creating host %s on its preferred node", key.label)
        ray.kill(self._handles.pop(key), no_restart=True)
        link = self._links.pop(key, None)
        if link is not None:
            link.close()
        for _ in range(20):  # the name is released a moment after the kill
            try:
                await self.handle(key).endpoint.remote()
                break
            except ray.exceptions.RayError:
                self._handles.pop(key, None)
                await asyncio.sleep(0.1)
        return True

    def _lost(self, key: HostKey, link: HostLink) -> None:
        """A link dropped: if this process holds sockets of that host's objects, reconnect
        at once (not on the next event), so their pushes keep flowing."""
        if self._closing or not self.hub.sockets_on(key):
            return
        task = asyncio.ensure_future(self._link(key))
        self._reconnecting.add(task)
        task.add_done_callback(self._reconnected)

    def _reconnected(self, task: asyncio.Future[HostLink]) -> None:
        self._reconnecting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("reconnecting to a host failed: %s", task.exception())

    async def host_metrics(self) -> list[dict[str, Any]]:
        """Ask every live host of the app (found by name, dedicated ones too) for its
        counters, waiting at most ``METRICS_TIMEOUT_S``."""
        hosts = await asyncio.to_thread(_app_hosts, self.spec, dict(self._handles))
        asked = [_awaitable(handle.metrics.remote()) for _, handle in hosts]
        replies = await asyncio.gather(
            *(asyncio.wait_for(reply, METRICS_TIMEOUT_S) for reply in asked),
            return_exceptions=True,
        )
        snapshots: list[dict[str, Any]] = []
        for (key, handle), reply in zip(hosts, replies, strict=True):
            if isinstance(reply, dict) and reply:
                snapshots.append(reply)
            else:
                snapshots.append({"binding": key.binding, "host": key.label, "up": False})
                if self._handles.get(key) is handle:  # perhaps a dead actor's: look it up anew
                    self._handles.pop(key, None)
        return snapshots

    async def close(self) -> None:
        self._closing = True
        for task in self._reconnecting:
            task.cancel()
        for link in self._links.values():
            link.close()
        self._links.clear()


METRICS_TIMEOUT_S = 5.0


async def _awaitable(ref: Any) -> Any:
    return await ref


def _app_hosts(spec: RuntimeSpec, known: dict[HostKey, Any]) -> list[tuple[HostKey, Any]]:
    """Every live host of the app and its handle, from ``known`` or looked up (blocking GCS
    queries: run in a thread)."""
    prefix = f"raydo:{spec.app_name}:"
    hosts = []
    for info in ray.util.list_named_actors(all_namespaces=True):
        name = info["name"] if isinstance(info, dict) else info
        if isinstance(name, str) and name.startswith(prefix):
            try:
                key = HostKey.from_label(name[len(prefix) :])
                handle = known.get(key) or ray.get_actor(name, namespace=RAY_NAMESPACE)
                hosts.append((key, handle))
            except ValueError:  # gone since it was listed, or not a host's name
                continue
    return hosts


def kill_hosts(spec: RuntimeSpec) -> int:
    """Kill every host of an app (tests and ``raydo`` maintenance); how many were found."""
    killed = 0
    prefix = f"raydo:{spec.app_name}:"
    for info in ray.util.list_named_actors(all_namespaces=True):
        name = info["name"] if isinstance(info, dict) else info
        if isinstance(name, str) and name.startswith(prefix):
            try:
                ray.kill(ray.get_actor(name, namespace=RAY_NAMESPACE), no_restart=True)
                killed += 1
            except ValueError:
                pass
    return killed
