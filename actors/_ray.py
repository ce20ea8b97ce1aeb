"""Everything raydo asks of Ray, in one place: start or join a cluster, run hosts as actors.

Each host is a detached, named Ray actor (``raydo:<app>:<binding>/shard/<n>``, or
``.../object/<id>`` for dedicated placement) with ``max_restarts=-1`` and
``max_task_retries=0``: Ray's name registry keeps one live host per name, restarts a host
that dies, and never runs a call twice. The actor runs a :class:`Host` on its own event loop
thread and serves the direct event stream of :mod:`actors._wire` on a TCP port; callers
learn the port and a token through one Ray call, ``endpoint()``, and reconnect the same way
after a restart.

A gateway's placement also watches the parts of Ray its hosts need (:mod:`actors._cluster_watch`):
under ``raydo dev`` the GCS and raylet it started, whose death ends the runtime
(``on_cluster_lost``); under ``raydo serve`` the cluster's GCS and this node's raylet, whose
loss makes every call that needs Ray fail at once with the reason, until the cluster answers
again and the gateway rejoins it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future as ThreadFuture
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
import ray.exceptions

from raydo.storage.folder_lock import FolderLock

from . import _observe
from ._app_env import namespaces_env
from ._cluster_watch import ClusterWatch, Probe, process_probe, tcp_probe
from ._errors import DeployError, HostUnavailable
from ._heap import freeze_startup_heap
from ._host import Host
from ._loading import code_version, forget_app_modules, import_from_app
from ._services import ServiceReplica, Services, ServiceSpec
from ._spec import HostKey, RuntimeSpec
from ._streams import in_process
from ._wire import HostLink, HostServerProtocol
from .types import Event
from .websockets import SocketHub

log = logging.getLogger("raydo.ray")

RAY_NAMESPACE = "raydo"
CONNECT_TIMEOUT_S = 60.0
CONNECT_ATTEMPT_S = 5.0
RESPREAD_ATTEMPTS = 8
HOST_MEMORY_BYTES = 1
"""What a host asks Ray for: one byte of Ray's logical ``memory`` (and no CPU). Ray places an
actor that asks for nothing on a random alive node whatever its soft node preference (only a
hard one is kept), so on two nodes each host landed off its node half the time; a request of
any size makes Ray honour the preference."""
REJOIN_TIMEOUT_S = 60.0
LINK_CHECK_S = 1.0
"""How often a placement looks at its links for hosts that stopped answering."""
LINK_SILENT_S = 2.0
"""A link whose events have waited this long with nothing heard from its host is asked
after: Ray is asked for the host's endpoint (a restarted host has a new one)."""
LINK_PROBE_S = 3.0
LINK_HUNG_S = 30.0
"""A link silent this long with events waiting, whose host Ray cannot reach either, is given
up: its events fail (a frozen or partitioned node must not hold callers without bound)."""
GCS_RECONNECT_S = 10**9
"""How long a gateway's Ray driver waits for a lost GCS before Ray ends the process (Ray's
default is 60 s): forever, since the gateway reports the loss and rejoins by itself."""

_joined_address: str | None = None
"""The address ``join_ray`` was given (``None`` for an embedded Ray): what a rejoin uses."""


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """``ray.init`` makes SIGTERM call ``sys.exit`` wherever the main thread is (inside the
    server's event loop, say); the server's own handlers, which stop it in order, stay."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)


def start_local_ray(*, num_cpus: int | None = None) -> None:
    """Start an embedded single-node Ray for this process (``raydo dev``)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        with _signal_handlers_kept():
            _init_local(num_cpus)


LOCAL_START_ATTEMPTS = 3
"""How many times an embedded Ray is started before its failure is the process's: on a loaded
machine Ray's raylet gives up waiting for its own agents (a fixed 30 s) and the node never
registers, and the next try usually succeeds."""


def _init_local(num_cpus: int | None) -> None:
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            ray.init(
                address="local",
                namespace=RAY_NAMESPACE,
                include_dashboard=False,
                num_cpus=num_cpus,
                log_to_driver=True,
                configure_logging=False,
            )
            return
        except Exception as exc:
            # Ray raises a bare Exception for a node that did not come up; anything else
            # (bad arguments, no permission on /tmp/ray) fails the same way every time.
            if "timed out during startup" not in str(exc) or attempt == LOCAL_START_ATTEMPTS:
                raise
            log.warning(
                "the embedded Ray did not start (%s); starting it again (%d of %d)",
                exc,
                attempt + 1,
                LOCAL_START_ATTEMPTS,
            )
            ray.shutdown()  # what the failed start left running: its GCS, its agents


def join_ray(address: str, *, runtime_env: dict[str, Any] | None = None) -> None:
    """Connect this process to a running Ray cluster (``raydo serve``); ``runtime_env`` is
    the job's (``raydo deploy``: the app's folder as its ``working_dir``), which the hosts it
    creates inherit."""
    global _joined_address
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Read by Ray's core worker when it starts: a lost GCS no longer ends this process.
    os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(GCS_RECONNECT_S))
    _joined_address = address
    if not ray.is_initialized():
        _token_auth_if_token_found()
        with _signal_handlers_kept():
            try:
                ray.init(
                    address=address,
                    namespace=RAY_NAMESPACE,
                    log_to_driver=False,
                    configure_logging=False,
                    runtime_env=runtime_env,
                )
            except ray.exceptions.AuthenticationError as e:
                raise ray.exceptions.AuthenticationError(
                    f"the Ray cluster at {address} refused this process's token ({e}): give"
                    " it the cluster's token (RAY_AUTH_TOKEN_PATH=FILE or RAY_AUTH_TOKEN;"
                    " `ray start` keeps it in ~/.ray/auth_token) with RAY_AUTH_MODE=token"
                ) from e


def _token_auth_if_token_found() -> None:
    """Use token auth when ``RAY_AUTH_MODE`` is unset and this user has a token (Ray 2.60's
    ``ray start`` makes ``~/.ray/auth_token`` and turns token auth on): Ray's own rule, which
    it applies only to ``address="auto"``, so ``--address HOST:PORT`` works as written too.
    ``RAY_AUTH_MODE`` set either way is left as it is."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # another Ray release: RAY_AUTH_MODE is the user's to set
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _rejoin_ray() -> None:
    """Leave the lost cluster and join the one at the same address again (blocking)."""
    assert _joined_address is not None
    ray.shutdown()
    join_ray(_joined_address)


def stop_local_ray(timeout: float = 10.0) -> None:
    """Stop the embedded Ray this process started (its hosts, then its GCS and raylet),
    waiting at most ``timeout`` seconds: a Ray that lost a part may not answer."""
    if not ray.is_initialized():
        return
    done = threading.Event()

    def stop() -> None:
        try:
            ray.shutdown()
        finally:
            done.set()

    threading.Thread(target=stop, name="raydo-ray-stop", daemon=True).start()
    if not done.wait(timeout):
        log.warning("Ray did not stop within %.0f s", timeout)


def _cluster_probes() -> tuple[list[Probe], bool]:
    """What to watch of the Ray this process is part of, and whether this process started it
    (an embedded Ray, whose GCS and raylet are its children)."""
    from ray._private import ray_constants
    from ray._private import worker as ray_worker

    node = ray_worker._global_node
    processes: dict[str, Any] = getattr(node, "all_processes", None) or {}
    if node is not None and ray_constants.PROCESS_TYPE_GCS_SERVER in processes:
        logs = node.get_logs_dir_path()
        probes = []
        for kind in (ray_constants.PROCESS_TYPE_GCS_SERVER, ray_constants.PROCESS_TYPE_RAYLET):
            for info in processes.get(kind, ()):
                process = info.process
                what = f"Ray's {kind} (pid {process.pid})"
                probes.append(process_probe(what, process.poll, f"{logs}/{kind}.out"))
        return probes, True
    gcs_host, _, gcs_port = ray.get_runtime_context().gcs_address.rpartition(":")
    here: Any = ray_worker.global_worker.node
    return [
        tcp_probe("the Ray cluster's GCS", gcs_host, int(gcs_port)),
        tcp_probe("this node's raylet", here.node_ip_address, int(here.node_manager_port)),
    ], False


def _in_thread(fn: Callable[[], None], timeout: float) -> asyncio.Future[None]:
    """Run blocking ``fn`` in a daemon thread (a hung Ray call must not keep the process
    from exiting); the future fails with ``TimeoutError`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if not future.done():
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(settle, exc)
        else:
            loop.call_soon_threadsafe(settle, None)

    threading.Thread(target=run, name="raydo-ray-call", daemon=True).start()
    timer = loop.call_later(
        timeout, settle, TimeoutError(f"no answer from Ray within {timeout:.0f} s")
    )
    future.add_done_callback(lambda _: timer.cancel())
    return future


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
        name_process(actor_name(spec, key))
        os.environ.update(spec.environ)  # before the app loads: it may read them at import
        self._spec = spec.on_this_node()  # a node may keep objects on its own disk
        if _packaged():  # raydo deploy: the app's files are Ray's copy, in this process's cwd
            self._spec = replace(self._spec, app_root=os.getcwd())
        self._key = key
        self._bind = bind
        self._error: str | None = None
        self._endpoint: tuple[str, int, str] | None = None
        self._host: Host | None = None
        self._folder_lock: FolderLock | None = None
        self._code_version = code_version(self._spec.app_root, skip=self._spec.storage_root)
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

    def code_version(self) -> str:
        """The :func:`code_version` of the app's files when this host last loaded them."""
        return self._code_version

    def node_id(self) -> str:
        """The Ray node this host runs on."""
        return str(ray.get_runtime_context().get_node_id())

    def packaged(self) -> bool:
        """Whether ``raydo deploy`` made this host (it runs on Ray's copy of the app)."""
        return _packaged()

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

    def reload_code(self) -> int:
        """Forget the app's modules in this process and reload the host's class
        (``Host.reload_code``); how many objects were live."""
        host = self._host
        if host is None:
            return 0

        def reload() -> int:
            forget_app_modules(self._spec.app_root)
            self._code_version = code_version(self._spec.app_root, skip=self._spec.storage_root)
            return host.reload_code()

        live: int = self._run(reload)
        return live

    def stop(self) -> None:
        """Close the host (its turns end, its files close; see ``Host.close``) and let go of
        the folder; the caller then kills the actor for good."""
        host = self._host
        if host is not None:
            asyncio.run_coroutine_threadsafe(host.close(), self._loop).result(HOST_STOP_S)
        if self._folder_lock is not None:
            self._folder_lock.release()


_remote_host: Any = None


def _create_host(spec: RuntimeSpec, key: HostKey, bind: str) -> Any:
    """The handle of the host actor named for ``key``, created (with this job's runtime_env)
    if it does not exist."""
    return (
        _host_class()
        .options(
            name=actor_name(spec, key),
            namespace=RAY_NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=4,
            **host_placement(key),
        )
        .remote(spec, key, bind)
    )


def _packaged() -> bool:
    """Whether this process runs with a ``working_dir`` Ray shipped (``raydo deploy``)."""
    return bool(ray.get_runtime_context().runtime_env.get("working_dir"))


def _host_class() -> Any:
    global _remote_host
    if _remote_host is None:
        _remote_host = ray.remote(HostActor)
    return _remote_host


def host_placement(key: HostKey) -> dict[str, Any]:
    """The options that say where Ray runs the host for ``key``: what it asks for (no CPU,
    ``HOST_MEMORY_BYTES``) and which node it prefers."""
    return {"num_cpus": 0, "memory": HOST_MEMORY_BYTES, "scheduling_strategy": _spread(key)}


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


def name_process(name: str) -> None:
    """Put ``name`` into this worker process's title, so ``ps`` and ``top`` tell hosts apart.

    Ray titles a worker after its actor class and what it runs (``ray::HostActor`` between
    calls, ``ray::HostActor.endpoint`` during one) and sets it again around every call, through
    ``ray._raylet.setproctitle``; each title it sets gets `` [name]`` appended here. Should a
    Ray release move that function, titles stay Ray's own (nothing else depends on them).
    """
    raylet: Any = ray._raylet
    original = getattr(raylet, "setproctitle", None)
    current = getattr(raylet, "getproctitle", None)
    if original is None or current is None or getattr(original, "raydo_name", None):
        return
    suffix = f" [{name}]"

    def titled(title: str) -> None:
        original(title if title.endswith(suffix) else title + suffix)

    titled.raydo_name = name  # type: ignore[attr-defined]
    raylet.setproctitle = titled
    titled(current())


class RayPlacement:
    """Hosts in Ray actors, reached over direct streams; made on first use, found after restarts.

    ``on_cluster_lost(reason)`` runs each time the cluster is lost (an embedded Ray that lost
    its GCS or raylet never comes back; a joined cluster may); ``on_rejoined()`` runs after
    the gateway rejoined a lost cluster, before its standing hosts start.
    """

    def __init__(
        self,
        spec: RuntimeSpec,
        *,
        bind: str = "127.0.0.1",
        on_cluster_lost: Callable[[str], None] | None = None,
        on_rejoined: Callable[[], None] | None = None,
    ) -> None:
        self.spec = spec
        self.bind = bind
        self._on_cluster_lost = on_cluster_lost
        self._on_rejoined = on_rejoined
        self.watch: ClusterWatch | None = None
        """Set by :meth:`start` (gateways only: a host's own placement watches nothing)."""
        self.services: Services | None = RayServices(spec)
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
        self._embedded = False
        self._gcs_probe: Probe | None = None
        self._link_watch: asyncio.Future[None] | None = None
        self._probing: set[HostKey] = set()

    async def deliver(self, key: HostKey, event: Event) -> Any:
        local = self.local
        if local is not None and local[0] == key:
            event.caller = self._local_caller
            event.seq, self._local_seq = self._local_seq, self._local_seq + 1
            if event.streams is not None:  # its bodies stream through pipes in this process
                event.streams = in_process(event.streams, self.spec.limits)
            return await local[1].deliver(event)
        link = self._links.get(key)
        if link is None or link.closed:
            if self.watch is not None:  # no new link while the cluster cannot run hosts
                self.watch.check()
            link = await self._link(key)
        return await link.call(event)

    def handle(self, key: HostKey) -> Any:
        """The Ray actor handle of a host, creating the host if it does not exist."""
        handle = self._handles.get(key)
        if handle is None:
            handle = _create_host(self.spec, key, self.bind)
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
            if self.watch is not None:
                self.watch.check()
            try:
                # Bounded per attempt, so a cluster that stops answering meanwhile is seen.
                attempt = min(CONNECT_ATTEMPT_S, max(0.1, deadline - time.monotonic()))
                address, port, token = await asyncio.wait_for(
                    _awaitable(self.handle(key).endpoint.remote()), attempt
                )
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
                if self._link_watch is None:
                    self._link_watch = asyncio.ensure_future(self._watch_links())
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
        """Watch the cluster, then make sure every standing host runs (creating it if
        needed) and has armed its alarms."""
        if self.watch is None:
            probes, embedded = _cluster_probes()
            self._embedded, self._gcs_probe = embedded, probes[0]
            self.watch = ClusterWatch(
                probes, on_down=self._cluster_down, recover=None if embedded else self._rejoin
            )
            self.watch.start()
        await self._start_hosts()
        await self._refresh_code()

    async def _refresh_code(self) -> None:
        """Hosts outlive gateways on a cluster: a host that loaded older files of the app
        than this gateway sees (``raydo serve`` started again after an edit) takes the new
        code now, as a hot reload does (its objects are deactivated and come back from
        their files), and the log says which did; one that cannot is an error naming it."""
        version = await asyncio.to_thread(
            code_version, self.spec.app_root, skip=self.spec.storage_root
        )
        hosts = await asyncio.to_thread(_app_hosts, self.spec, dict(self._handles))

        async def refresh(key: HostKey, handle: Any) -> None:
            try:
                running = await asyncio.wait_for(
                    _awaitable(handle.code_version.remote()), CONNECT_TIMEOUT_S
                )
                if running == version:
                    return
                live = await asyncio.wait_for(
                    _awaitable(handle.reload_code.remote()), RELOAD_TIMEOUT_S
                )
            except (ray.exceptions.RayError, TimeoutError) as e:
                log.error(
                    "host %s may still run older code of the app (it did not reload: %r);"
                    " it restarts on the new code once its actor %s is killed"
                    " (ray.kill(ray.get_actor(NAME, namespace=%r))) or the cluster restarts",
                    key.label,
                    e,
                    actor_name(self.spec, key),
                    RAY_NAMESPACE,
                )
                return
            log.warning(
                "host %s ran older code of the app: it took the new code (%d objects"
                " deactivated, back from their files on their next event)",
                key.label,
                live,
            )

        await asyncio.gather(*(refresh(key, handle) for key, handle in hosts))

    def _cluster_down(self, reason: str) -> None:
        if self._embedded:
            log.error("%s: the embedded Ray cannot run hosts any more", reason)
        else:
            log.error("lost the Ray cluster: %s; answering 503 and retrying", reason)
        if self._on_cluster_lost is not None:
            self._on_cluster_lost(reason)

    async def _rejoin(self) -> bool:
        """While the cluster is lost: once its GCS answers again, leave the old connection
        and join anew, forget every handle and link, and start the standing hosts."""
        assert self.watch is not None
        assert self._gcs_probe is not None
        if await self._gcs_probe.check() is not None:  # at the address last joined
            return False
        log.warning("the Ray cluster's GCS answers again: rejoining it")
        for link in self._links.values():
            link.close()
        self._links.clear()
        self._handles.clear()
        await _in_thread(_rejoin_ray, REJOIN_TIMEOUT_S)
        probes, _ = _cluster_probes()
        self._gcs_probe = probes[0]
        self.watch.replace_probes(probes)
        if self._on_rejoined is not None:
            self._on_rejoined()
        await self._start_hosts()
        log.warning("rejoined the Ray cluster (%s)", ray_runtime())
        return True

    async def _start_hosts(self) -> None:
        keys = self.spec.standing_hosts()
        results = await asyncio.gather(
            *(
                asyncio.wait_for(_awaitable(self.handle(key).endpoint.remote()), CONNECT_TIMEOUT_S)
                for key in keys
            ),
            return_exceptions=True,
        )
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                log.error("host %s did not start: %s", key.label, result)
        await self._respread(keys)

    async def _respread(self, keys: list[HostKey]) -> None:
        """Move standing hosts that landed off their preferred node while it is alive.

        A soft preference is a hint: a raylet whose view of the cluster does not have the node
        yet places the host elsewhere, and then one node's loss would take more than its
        share (before hosts asked for ``HOST_MEMORY_BYTES``, Ray ignored the hint for half of
        them: see there). Each misplaced host is re-created, at start-up, before it holds
        anything in memory: all at once, each up to ``RESPREAD_ATTEMPTS`` times with growing
        waits.
        """
        nodes = _alive_nodes()
        if len(nodes) < 2:
            return
        await asyncio.gather(*(self._respread_one(key, nodes) for key in keys))

    async def _respread_one(self, key: HostKey, nodes: list[str]) -> None:
        # A raylet's view may lag a node that just joined by a moment: the tries wait
        # longer each time.
        for attempt in range(RESPREAD_ATTEMPTS):
            if attempt:
                await asyncio.sleep(min(0.5 * attempt, 2.0))
            if not await self._recreate_if_misplaced(key, nodes):
                return

    async def _recreate_if_misplaced(self, key: HostKey, nodes: list[str]) -> bool:
        """True when the host was off its preferred node and was re-created."""
        try:
            where = await self.handle(key).node_id.remote()
        except ray.exceptions.RayError:
            return False
        if where == _preferred_node(key, nodes):
            return False
        try:
            if await self.handle(key).packaged.remote():
                return False  # raydo deploy placed it, in an environment only it can make
        except ray.exceptions.RayError:
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

    async def _watch_links(self) -> None:
        """Find hosts that stopped answering (a node frozen, partitioned, or dead in a way
        the kernel does not report): a link with events waiting and nothing heard from its
        host for ``LINK_SILENT_S`` is checked with Ray (:meth:`_ask_after`). Links to other
        hosts are never held up by it."""
        tasks: set[asyncio.Future[None]] = set()
        try:
            while not self._closing:
                await asyncio.sleep(LINK_CHECK_S)
                now = time.monotonic()
                for key, link in list(self._links.items()):
                    silent = now - link.last_heard
                    if link.closed or not link.waiting or silent < LINK_SILENT_S:
                        continue
                    if key not in self._probing:
                        self._probing.add(key)
                        task = asyncio.ensure_future(self._ask_after(key, link))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
        finally:
            for probe in tasks:
                probe.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _ask_after(self, key: HostKey, link: HostLink) -> None:
        """Ask Ray for the host's endpoint. Another one than the link's: Ray restarted the
        host (its old process is a zombie or gone), so the link is given up and the next
        event goes to the new one. No answer and the link silent for ``LINK_HUNG_S``: given
        up too, saying so. The same one: the host is alive, only busy."""
        try:
            try:
                endpoint = await asyncio.wait_for(
                    _awaitable(self.handle(key).endpoint.remote()), LINK_PROBE_S
                )
            except (TimeoutError, ray.exceptions.RayError) as exc:
                if isinstance(exc, ray.exceptions.ActorDiedError):
                    self._handles.pop(key, None)
                silent = time.monotonic() - link.last_heard
                if silent >= LINK_HUNG_S and link.waiting:
                    self._give_up(
                        key,
                        link,
                        f"the host {key.label} has not answered for {silent:.0f} s and Ray"
                        " cannot reach it (its node is frozen, partitioned or gone); the"
                        " event may or may not have run",
                    )
                return
            if tuple(endpoint) != link.endpoint and not link.closed:
                self._give_up(
                    key,
                    link,
                    f"the host {key.label} stopped answering and Ray restarted it elsewhere;"
                    " the event may or may not have run (the old host can acknowledge"
                    " nothing more)",
                )
        finally:
            self._probing.discard(key)

    def _give_up(self, key: HostKey, link: HostLink, why: str) -> None:
        log.warning("giving up the connection to %s: %s", key.label, why)
        if self._links.get(key) is link:
            del self._links[key]
        link.abandon(why)

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

    async def reload_code(self) -> int:
        """Ask every live host of the app (dedicated ones too) to reload its class; raise
        :class:`RuntimeError` naming the hosts that did not."""
        hosts = await asyncio.to_thread(_app_hosts, self.spec, dict(self._handles))
        replies = await asyncio.gather(
            *(
                asyncio.wait_for(_awaitable(handle.reload_code.remote()), RELOAD_TIMEOUT_S)
                for _, handle in hosts
            ),
            return_exceptions=True,
        )
        failed = [
            f"{key.label}: {reply!r}"
            for (key, _), reply in zip(hosts, replies, strict=True)
            if isinstance(reply, BaseException)
        ]
        if failed:
            raise RuntimeError("hosts did not reload: " + "; ".join(failed))
        return sum(reply for reply in replies if isinstance(reply, int))

    async def close(self) -> None:
        self._closing = True
        if self.watch is not None:
            await self.watch.close()
        for task in self._reconnecting:
            task.cancel()
        if self._link_watch is not None:
            self._link_watch.cancel()
            await asyncio.gather(self._link_watch, return_exceptions=True)
            self._link_watch = None
        for link in self._links.values():
            link.close()
        self._links.clear()


METRICS_TIMEOUT_S = 5.0
RELOAD_TIMEOUT_S = 30.0


async def _awaitable(ref: Any) -> Any:
    return await ref


SERVICE_PREFIX = "raydo-svc"


class ServiceActor:
    """The Ray actor around one replica of a service (see :mod:`actors._services`): an async
    actor, so concurrent calls reach the object together (the model binding batches them)."""

    def __init__(self, spec: RuntimeSpec, service: ServiceSpec, index: int) -> None:
        name_process(service_name(spec, service, index))
        os.environ.update(spec.environ)
        root = os.getcwd() if _packaged() else spec.app_root
        self._object = import_from_app(root, service.factory)(**service.arguments)

    async def call(self, method: str, *args: Any) -> Any:
        result = getattr(self._object, method)(*args)
        if asyncio.iscoroutine(result):
            result = await result
        return result


def service_name(spec: RuntimeSpec, service: ServiceSpec, index: int) -> str:
    return f"{SERVICE_PREFIX}:{spec.app_name}:{service.name}:{index}"


_remote_service: Any = None


class RayReplica:
    """A handle on one service replica; an exception of the object's method is raised as
    itself, not as Ray's wrapper."""

    def __init__(self, spec: RuntimeSpec, service: ServiceSpec, index: int) -> None:
        self._spec = spec
        self._service = service
        self._index = index
        self._handle: Any = None

    def _actor(self) -> Any:
        global _remote_service
        if self._handle is None:
            if _remote_service is None:
                _remote_service = ray.remote(ServiceActor)
            self._handle = _remote_service.options(
                name=service_name(self._spec, self._service, self._index),
                namespace=RAY_NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
                num_cpus=self._service.num_cpus,
                num_gpus=self._service.num_gpus,
                max_restarts=-1,
                max_task_retries=0,
                max_concurrency=1000,
            ).remote(self._spec, self._service, self._index)
        return self._handle

    async def call(self, method: str, *args: Any) -> Any:
        try:
            return await self._actor().call.remote(method, *args)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
        except ray.exceptions.RayError as exc:
            raise HostUnavailable(
                f"service {self._service.name} replica {self._index}: {exc}", retryable=False
            ) from exc


class RayServices:
    """Service actors on Ray: each service's replicas, one handle each per process."""

    def __init__(self, spec: RuntimeSpec) -> None:
        self._spec = spec
        self._replicas: dict[str, list[RayReplica]] = {}

    def replicas(self, service: ServiceSpec) -> list[ServiceReplica]:
        found = self._replicas.get(service.name)
        if found is None:
            found = [RayReplica(self._spec, service, i) for i in range(service.replicas)]
            self._replicas[service.name] = found
        return list(found)


def _kill_services(spec: RuntimeSpec) -> int:
    """Kill every service actor of an app; how many."""
    prefix = f"{SERVICE_PREFIX}:{spec.app_name}:"
    killed = 0
    for info in ray.util.list_named_actors(all_namespaces=True):
        name = info["name"] if isinstance(info, dict) else info
        if isinstance(name, str) and name.startswith(prefix):
            with contextlib.suppress(ValueError, ray.exceptions.RayError):
                ray.kill(ray.get_actor(name, namespace=RAY_NAMESPACE), no_restart=True)
                killed += 1
    return killed


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


HOST_STOP_S = 10.0


def stop_hosts(spec: RuntimeSpec, timeout: float = HOST_STOP_S) -> int:
    """Close every host of an app, each in order (``HostActor.stop``), then kill them for
    good; a host that does not close within ``timeout`` seconds is killed anyway. How many."""
    handles = [handle for _, handle in _app_hosts(spec, {})]
    closing = [handle.stop.remote() for handle in handles]
    with contextlib.suppress(ray.exceptions.RayError):
        ray.wait(closing, num_returns=len(closing), timeout=timeout)
    for handle in handles:
        with contextlib.suppress(ValueError, ray.exceptions.RayError):
            ray.kill(handle, no_restart=True)
    _kill_services(spec)
    return len(handles)


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
    _kill_services(spec)
    return killed


STATUS_TIMEOUT_S = 10.0


def host_statuses(spec: RuntimeSpec, timeout: float = STATUS_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every live host of the app as plain data (``raydo status``): its label, binding, Ray
    node, pid, the code version it loaded, its live objects and mailbox depth, and how many
    times Ray restarted its actor. A host that does not answer within ``timeout`` seconds is
    ``up: False`` with what Ray alone knows. Blocking (GCS queries and actor calls)."""
    from ray._private import state as ray_state

    hosts = sorted(_app_hosts(spec, {}), key=lambda item: item[0].label)
    asked = [
        (handle.node_id.remote(), handle.code_version.remote(), handle.metrics.remote())
        for _, handle in hosts
    ]
    flat = [ref for refs in asked for ref in refs]
    with contextlib.suppress(ray.exceptions.RayError):
        ray.wait(flat, num_returns=len(flat), timeout=timeout)
    statuses: list[dict[str, Any]] = []
    for (key, handle), (node_ref, version_ref, metrics_ref) in zip(hosts, asked, strict=True):
        status: dict[str, Any] = {"host": key.label, "binding": key.binding}
        actor: dict[str, Any] = {}
        with contextlib.suppress(Exception):  # the actor may be gone since it was listed
            actor = ray_state.actors(actor_id=handle._actor_id.hex())
        status["restarts"] = int(actor.get("NumRestarts", 0))
        try:
            node, version, metrics = ray.get([node_ref, version_ref, metrics_ref], timeout=0.1)
        except (ray.exceptions.RayError, TimeoutError):
            address = actor.get("Address") or {}
            status.update(
                up=False, node=str(address.get("NodeID", "")) or None, pid=actor.get("Pid")
            )
            status.update(code_version=None, live_objects=None, mailbox_depth=None)
            statuses.append(status)
            continue
        status.update(
            up=bool(metrics),
            node=str(node),
            pid=int(metrics.get("pid", 0)) or actor.get("Pid"),
            code_version=str(version),
            live_objects=metrics.get("live_objects"),
            mailbox_depth=metrics.get("mailbox_depth"),
        )
        statuses.append(status)
    return statuses


#: How long a node may take to set up a deployed app's environment (copy its folder, install
#: its dependencies: Ray clones this Python environment for them, which takes tens of seconds).
ENVIRONMENT_SETUP_S = 900.0
#: How long a deploy keeps making a host Ray placed off its preferred node again. Hosts ask
#: for ``HOST_MEMORY_BYTES`` so that Ray keeps their preference at all; what is left is a
#: raylet whose view lacks a node that just joined, which takes the preference as "node
#: gone". Past it the host stays where Ray put it (it serves there), with a warning.
DEPLOY_PLACEMENT_S = 30.0


@functools.cache
def _environment_probe() -> Any:
    @ray.remote(num_cpus=0, max_retries=0)
    def environment_ready(imports: list[str]) -> str:
        import importlib

        for name in imports:
            importlib.import_module(name)
        return str(ray.get_runtime_context().get_node_id())

    return environment_ready


def _check_runtime_env(imports: list[str]) -> None:
    """On every alive node, run a task in this job's runtime_env that imports ``imports`` (the
    modules of the wheels the app carries), so that a folder or dependency the cluster cannot
    set up fails the deploy, with pip's or Python's words, before any host is touched."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = _environment_probe()
    pending = {
        node: probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False)
        ).remote(imports)
        for node in _alive_nodes()
    }
    for node, ref in pending.items():
        try:
            ray.get(ref, timeout=ENVIRONMENT_SETUP_S)
        except ray.exceptions.RuntimeEnvSetupError as exc:
            raise DeployError(
                f"the cluster could not set up the app's environment on node {node}: {exc}"
            ) from None
        except ray.exceptions.GetTimeoutError:
            raise DeployError(
                f"node {node} did not set up the app's environment within"
                f" {ENVIRONMENT_SETUP_S:.0f} s"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            raise DeployError(
                f"the app's dependencies do not import on node {node}: {exc.cause!r}"
            ) from None


def _start_deployed(
    spec: RuntimeSpec, key: HostKey, bind: str, version: str, *, replacing: Any
) -> Any:
    """Create the host for ``key`` in this job's runtime_env and wait until it serves; the
    name of ``replacing`` (a host just killed, or None) is released a moment after its kill.

    A gateway that lost its link to the killed host may take the free name first and create
    the host in its own environment (without the deployed folder and dependencies): such a
    host is killed and made again, until the one under the name is this deploy's."""
    for _ in range(100):
        handle = _create_host(spec, key, bind)
        try:
            # A node that has not set up this environment yet installs it first.
            ray.get(handle.endpoint.remote(), timeout=ENVIRONMENT_SETUP_S)
            if replacing is not None and handle._actor_id == replacing._actor_id:
                time.sleep(0.1)
                continue
            ours = ray.get(
                [handle.packaged.remote(), handle.code_version.remote()],
                timeout=CONNECT_TIMEOUT_S,
            )
            if ours == [True, version]:
                return handle
            ray.kill(handle, no_restart=True)
            replacing = handle
        except ray.exceptions.RuntimeEnvSetupError as exc:
            raise DeployError(f"host {key.label} could not start: {exc}") from None
        except ray.exceptions.GetTimeoutError:
            raise DeployError(
                f"host {key.label} did not start within {ENVIRONMENT_SETUP_S:.0f} s"
            ) from None
        except ray.exceptions.RayActorError:
            pass
        time.sleep(0.1)
    raise DeployError(f"host {key.label} did not start: its old actor's name stayed taken")


def deploy_hosts(
    spec: RuntimeSpec,
    version: str,
    *,
    bind: str,
    on_host: Callable[[str, str], None],
    imports: list[str],
) -> list[tuple[str, str]]:
    """Start or update the app's standing hosts on this job's runtime_env, one at a time: a
    host running ``version`` is kept; one on other code is closed in order (its events
    finish, then its files close; ``HostActor.stop``), killed, and created again; a missing
    one is created. ``on_host(label, action)`` is told as each is done; the same pairs are
    returned. Blocking."""
    _check_runtime_env(imports)  # before any host stops: a dependency that does not install
    done: list[tuple[str, str]] = []
    for key in spec.standing_hosts():
        name = actor_name(spec, key)
        try:
            old: Any = ray.get_actor(name, namespace=RAY_NAMESPACE)
        except ValueError:
            old = None
        action = "started"
        if old is not None:
            try:
                running = ray.get(old.code_version.remote(), timeout=CONNECT_TIMEOUT_S)
            except (ray.exceptions.RayError, TimeoutError):
                running = None
            if running == version:
                done.append((key.label, "unchanged"))
                on_host(key.label, "unchanged")
                continue
            with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
                ray.get(old.stop.remote(), timeout=HOST_STOP_S + 5)
            ray.kill(old, no_restart=True)
            action = "updated"
        handle = _start_deployed(spec, key, bind, version, replacing=old)
        # The node preference is soft (a raylet whose view lacks a node that just joined
        # places the host elsewhere); a gateway does not move a deployed host (it would lose
        # the deployed environment), so the deploy places it itself.
        deadline = time.monotonic() + DEPLOY_PLACEMENT_S
        attempt = 0
        while True:
            nodes = _alive_nodes()
            if len(nodes) < 2:
                break
            where = ray.get(handle.node_id.remote(), timeout=CONNECT_TIMEOUT_S)
            preferred = _preferred_node(key, nodes)
            if where == preferred:
                break
            if time.monotonic() > deadline:
                log.warning(
                    "host %s runs on node %s, not on its preferred node %s: Ray kept placing"
                    " it there for %.0f s (%d attempts; alive nodes: %s)",
                    key.label,
                    where,
                    preferred,
                    DEPLOY_PLACEMENT_S,
                    attempt + 1,
                    ", ".join(nodes),
                )
                break
            ray.kill(handle, no_restart=True)
            time.sleep(min(0.25 * 2**attempt, 2.0))  # let the views catch up
            attempt += 1
            handle = _start_deployed(spec, key, bind, version, replacing=handle)
        done.append((key.label, action))
        on_host(key.label, action)
    return done


DEPLOYMENT_PREFIX = "raydo-deployment"
DEPLOYMENT_ARCHIVE_MAX = 512 * 1024 * 1024
"""The largest folder a deployment hands to gateways (Ray's own working_dir limit)."""


class DeploymentActor:
    """The record of an app's last ``raydo deploy``: its code version, and the folder's files
    as Ray shipped them (this actor runs in the deploy's ``runtime_env``, so its working
    directory is Ray's copy of the app). A deploy replaces the record (kills it, makes a new
    one), never changes it: a gateway parked on :meth:`parked` learns of the new version by
    that call failing, at once."""

    def __init__(self, version: str) -> None:
        self._version = version

    def version(self) -> str:
        return self._version

    def archive(self) -> bytes:
        """The deployed folder as a zip (paths relative to it; no symlinks followed out)."""
        import io
        import zipfile

        root = Path.cwd()
        buffer = io.BytesIO()
        total = 0
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_symlink() or not path.is_file() or "__pycache__" in path.parts:
                    continue
                total += path.stat().st_size
                if total > DEPLOYMENT_ARCHIVE_MAX:
                    raise DeployError(f"the deployed folder is over {DEPLOYMENT_ARCHIVE_MAX} bytes")
                archive.write(path, path.relative_to(root).as_posix())
        return buffer.getvalue()

    async def parked(self, timeout: float) -> None:
        """Return after ``timeout`` seconds; fails at once when this record is replaced."""
        await asyncio.sleep(timeout)


def deployment_name(spec: RuntimeSpec) -> str:
    return _deployment_name(spec.app_name)


def _deployment_name(app_name: str) -> str:
    return f"{DEPLOYMENT_PREFIX}:{app_name}"


def record_deployment(spec: RuntimeSpec, version: str) -> None:
    """Replace the app's deployment record with one for ``version``, in this job's
    runtime_env (the deploy's); blocking, returns once the new record answers."""
    name = deployment_name(spec)
    with contextlib.suppress(ValueError):
        ray.kill(ray.get_actor(name, namespace=RAY_NAMESPACE), no_restart=True)
    remote: Any = ray.remote(DeploymentActor)
    for _ in range(100):  # a killed actor's name is released a moment after the kill
        try:
            handle = remote.options(
                name=name,
                namespace=RAY_NAMESPACE,
                lifetime="detached",
                num_cpus=0,
                max_restarts=-1,
                max_concurrency=1000,
            ).remote(version)
        except ValueError:
            time.sleep(0.1)
            continue
        if ray.get(handle.version.remote(), timeout=ENVIRONMENT_SETUP_S) == version:
            return
    raise DeployError(f"the deployment record {name!r} stayed taken")


def _deployment(spec: RuntimeSpec) -> Any:
    """The app's deployment record, or None: none was made, or Ray cannot be asked now (a
    lost cluster: the gateway reports that itself; the follower looks again later)."""
    try:
        return ray.get_actor(deployment_name(spec), namespace=RAY_NAMESPACE)
    except Exception:  # noqa: BLE001 - ValueError (no record) or Ray's errors while it is lost
        return None


def deployed_files(app_name: str) -> tuple[str, bytes] | None:
    """The version and zipped files of the app named ``app_name`` as last deployed to the
    cluster this process joined; None when it never was. Blocking."""
    try:
        handle = ray.get_actor(_deployment_name(app_name), namespace=RAY_NAMESPACE)
    except ValueError:
        return None
    try:
        answers: list[Any] = ray.get(
            [handle.version.remote(), handle.archive.remote()], timeout=CONNECT_TIMEOUT_S
        )
    except ray.exceptions.RayTaskError as exc:
        raise DeployError(f"the deployed folder could not be read: {exc.cause!r}") from None
    except (ray.exceptions.RayError, TimeoutError):
        return None
    return str(answers[0]), bytes(answers[1])


async def deployed_version(spec: RuntimeSpec) -> str | None:
    """The version of the app's last deploy on the cluster this process joined; None when
    it was never deployed (or its record is being replaced)."""
    handle = await asyncio.to_thread(_deployment, spec)
    if handle is None:
        return None
    try:
        version: str = await handle.version.remote()
    except ray.exceptions.RayError:
        return None
    return version


async def deployed_archive(spec: RuntimeSpec) -> bytes | None:
    """The deployed folder's files as a zip (:meth:`DeploymentActor.archive`); None when the
    record is gone."""
    handle = await asyncio.to_thread(_deployment, spec)
    if handle is None:
        return None
    try:
        archive: bytes = await handle.archive.remote()
    except ray.exceptions.RayTaskError as exc:
        raise DeployError(f"the deployed folder could not be read: {exc.cause!r}") from None
    except ray.exceptions.RayError:
        return None
    return archive


async def await_deployment(spec: RuntimeSpec, timeout: float) -> None:
    """Wait up to ``timeout`` seconds, or less: until the app's deployment record is replaced
    (a new deploy) or found missing."""
    handle = await asyncio.to_thread(_deployment, spec)
    if handle is None:
        await asyncio.sleep(min(timeout, DEPLOYMENT_LOOK_S))
        return
    with contextlib.suppress(ray.exceptions.RayError):
        await handle.parked.remote(timeout)


DEPLOYMENT_LOOK_S = 2.0
"""How often a gateway looks for a deployment record while the app has none."""
