"""Where hosts run: in this process (:class:`LocalPlacement`) or in Ray actors
(:func:`ray_placement`).

Ray is imported only when a Ray placement is asked for.
"""

from __future__ import annotations

import atexit
import copy
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import DeployError
from ._heap import freeze_startup_heap
from ._loading import code_version
from ._local import LocalPlacement
from ._placement import Placement
from ._spec import RuntimeSpec
from .app_dependencies import DependencyError, app_dependencies, content_named, wheel_modules

if TYPE_CHECKING:
    from ._ray import RayPlacement


def ray_placement(
    spec: RuntimeSpec,
    *,
    bind: str = "127.0.0.1",
    on_cluster_lost: Callable[[str], None] | None = None,
    on_rejoined: Callable[[], None] | None = None,
) -> RayPlacement:
    """Hosts in detached Ray actors; ``bind`` is where hosts listen ("node" for the node's IP).

    ``on_cluster_lost(reason)``: the cluster can no longer run hosts (an embedded Ray lost its
    GCS or raylet, for good; a joined cluster's GCS or this node's raylet stopped answering);
    ``on_rejoined()``: a lost cluster answered again and this process joined it anew.
    """
    from ._ray import RayPlacement

    return RayPlacement(spec, bind=bind, on_cluster_lost=on_cluster_lost, on_rejoined=on_rejoined)


def load_ray() -> None:
    """Import Ray's native libraries now, before another extension's: a library that brings
    its own C++ runtime (usearch's, for the vector index) and is loaded first makes Ray's
    start abort (``std::regex_error`` in its GCS client). Cheap after the first call."""
    from . import _ray  # noqa: F401


def start_local_ray() -> None:
    """Start an embedded single-node Ray in this process."""
    from ._ray import start_local_ray as start

    start()


def stop_local_ray(timeout: float = 10.0) -> None:
    """Stop the embedded Ray this process started, waiting at most ``timeout`` seconds."""
    from ._ray import stop_local_ray as stop

    stop(timeout)


def stop_ray_hosts(spec: RuntimeSpec) -> int:
    """Close every Ray host of the app in order, then end them (``raydo dev`` stopping)."""
    from ._ray import stop_hosts

    return stop_hosts(spec)


def ray_runtime() -> str:
    """The storage-folder runtime id of the Ray cluster this process is connected to."""
    from ._ray import ray_runtime as runtime

    return runtime()


def join_ray(address: str, *, runtime_env: dict[str, Any] | None = None) -> None:
    """Join the Ray cluster at ``address`` ("auto" finds a local one); the hosts this process
    creates get ``runtime_env`` (see :func:`app_package`)."""
    from ._ray import join_ray as join

    # A copy: Ray rewrites the dict it is given (local py_modules become gcs:// URIs), and
    # the caller's package still names the files on this machine.
    join(address, runtime_env=copy.deepcopy(runtime_env))


PACKAGE_EXCLUDES = (".git", ".venv", "__pycache__", ".raydo", "node_modules")


def app_package(spec: RuntimeSpec) -> dict[str, Any]:
    """The Ray ``runtime_env`` that ships the app's folder to every node (``raydo deploy``):
    its ``working_dir``, without the storage folder, caches and virtual environments, and its
    Python dependencies (``requirements.txt``, else ``pyproject.toml``: see
    :mod:`raydo.actors.app_dependencies`): wheels it carries as Ray's ``py_modules``, the
    rest as Ray's ``pip``. Hosts created under it import the
    app and its dependencies from Ray's copies, so nodes need no copy of their own.

    Raises :class:`DependencyError` when a dependency cannot travel (a local path outside
    the folder, or in a part of it that is left out)."""
    root = Path(spec.app_root).resolve()
    excludes = list(PACKAGE_EXCLUDES)
    storage = Path(spec.storage_root).resolve()
    if storage.is_relative_to(root) and storage != root:
        excludes.append("/" + storage.relative_to(root).as_posix())
    package: dict[str, Any] = {"working_dir": str(root), "excludes": excludes}
    dependencies = app_dependencies(root, left_out=excludes)
    if dependencies.wheels:
        staging = Path(tempfile.mkdtemp(prefix="raydo-wheels-"))
        atexit.register(shutil.rmtree, staging, ignore_errors=True)
        package["py_modules"] = [str(content_named(w, staging)) for w in dependencies.wheels]
    if dependencies.pip:
        # Ray installs these on each node, once per distinct list, into an environment that
        # keeps the node's own packages (raydo, Ray) visible; pip's check of the whole
        # environment is off because those are not the app's to fix.
        package["pip"] = {"packages": list(dependencies.pip), "pip_check": False}
    return package


def deploy_hosts(
    spec: RuntimeSpec,
    package: dict[str, Any],
    *,
    bind: str,
    on_host: Callable[[str, str], None],
) -> list[tuple[str, str]]:
    """Start or update the app's standing hosts, host by host, on the code of its folder
    (``package``, the :func:`app_package` this process joined with): ``unchanged`` when a host
    already runs it, ``updated`` when it was drained (its events finish), stopped and started
    again on the new code, ``started`` when it did not exist. Objects keep their files."""
    from ._ray import deploy_hosts as deploy
    from ._ray import record_deployment

    wheels = package.get("py_modules", [])
    imports = [module for wheel in wheels for module in wheel_modules(Path(wheel))]
    version = app_code_version(spec)
    done = deploy(spec, version, bind=bind, on_host=on_host, imports=imports)
    # Last, once every host runs the new code: gateways following the record swap theirs.
    record_deployment(spec, version)
    return done


async def deployed_version(spec: RuntimeSpec) -> str | None:
    """The code version of the app's last ``raydo deploy`` to the cluster this process
    joined (:func:`join_ray`); None when it was never deployed there."""
    from ._ray import deployed_version as version

    return await version(spec)


async def deployed_archive(spec: RuntimeSpec) -> bytes | None:
    """The files of the app's last deploy, as Ray shipped them to the hosts, zipped (paths
    relative to the app's folder); None when it was never deployed. Raises
    :class:`DeployError` when the deployed folder cannot be read."""
    from ._ray import deployed_archive as archive

    return await archive(spec)


def deployed_files(app_name: str) -> tuple[str, bytes] | None:
    """The code version and the files (zipped, as :func:`deployed_archive`) of the app
    named ``app_name`` as last deployed to the cluster this process joined; None when it
    never was (``raydo serve --deployed``). Blocking."""
    from ._ray import deployed_files as files

    return files(app_name)


async def await_deployment(spec: RuntimeSpec, timeout: float) -> None:
    """Return within ``timeout`` seconds, at once when a new deploy replaces the last one:
    what a gateway following deploys waits on between looks at :func:`deployed_version`."""
    from ._ray import await_deployment as wait

    await wait(spec, timeout)


@dataclass(frozen=True)
class HostStatus:
    """One live host of an app on a Ray cluster, as ``raydo status`` shows it.

    ``up`` is False for a host Ray lists that did not answer (or failed to start); then the
    figures it alone knows (``code_version``, ``live_objects``, ``mailbox_depth``) are None.
    """

    host: str
    binding: str
    up: bool
    node: str | None
    pid: int | None
    code_version: str | None
    live_objects: int | None
    mailbox_depth: int | None
    restarts: int

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def app_code_version(spec: RuntimeSpec) -> str:
    """The version of the app's files as hosts would load them now (compare with
    :attr:`HostStatus.code_version`)."""
    return code_version(spec.app_root, skip=spec.storage_root)


def host_status(spec: RuntimeSpec) -> list[HostStatus]:
    """Every live host of the app on the Ray cluster this process joined (:func:`join_ray`),
    sorted by host label; empty when the app has none."""
    from ._ray import host_statuses

    return [HostStatus(**status) for status in host_statuses(spec)]


__all__ = [
    "DependencyError",
    "DeployError",
    "HostStatus",
    "LocalPlacement",
    "Placement",
    "app_code_version",
    "app_package",
    "await_deployment",
    "deploy_hosts",
    "deployed_archive",
    "deployed_files",
    "deployed_version",
    "freeze_startup_heap",
    "host_status",
    "join_ray",
    "ray_placement",
    "ray_runtime",
    "start_local_ray",
    "stop_local_ray",
    "stop_ray_hosts",
]
