"""Session-wide real infrastructure and the fixtures every suite shares.

- ``anyio_backend``: every ``async def test_`` runs on asyncio (anyio's pytest plugin, in auto
  mode: see pyproject.toml); each test gets its own event loop, as ``asyncio.run`` would.
- ``ray_cluster``: one Ray cluster for the session; this process joins it as a driver.
- ``placement`` (tests/placements.py): ``start_app`` keyword arguments for hosts in this
  process or on that Ray.
- ``app_copy``, ``gateway``: app folders under a unique name, and ``raydo serve`` processes.
- ``kill_hosts_after``: Ray hosts outlive the test that started them; this kills them after.
- ``name``: a fresh object name, so tests sharing an app never share an object.
- ``app``: the module's ``app_dir`` served in-process (overridden where both placements run).

The longest files are collected first (``LONGEST_FILES``): under ``--dist loadfile`` a worker
takes a file at a time in collection order, and a long file taken last keeps one worker busy
while the other has nothing left to do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cluster import REPO, RayCluster, Server, copy_app, make_temp_dir, serve
from tests.naming import fresh_name

if TYPE_CHECKING:  # imported for real inside the fixtures, once Ray's settings are made
    from raydo.gateway.testing import TestApp

pytest_plugins = ["tests.placements", "tests.s3_stores"]

LONGEST_FILES: dict[str, float] = {
    "tests/integration/test_deploy_cluster.py": 101,
    "tests/replication/test_node_loss.py": 94,
    "tests/integration/test_ray_failures.py": 88,
    "tests/gateway/test_metrics.py": 19,  # 79 in s16b, 60 of them a wait fixed since
    "tests/integration/test_sockets_after_crashes.py": 70,
    "tests/lifecycle/test_alarms.py": 55,
    "tests/integration/test_gateway_http.py": 54,
    "tests/websockets/test_websockets.py": 51,
    "tests/lifecycle/test_limits.py": 50,
    "tests/integration/test_failures.py": 49,
    "tests/integration/test_deploy.py": 48,
    "tests/bindings/test_r2.py": 48,
    "tests/wrangler/test_wrangler_served.py": 43,
    "tests/gateway/test_front_door_fuzz.py": 39,
    "tests/gateway/test_cli.py": 36,
    "tests/bindings/test_queues_ray.py": 35,
    "tests/bindings/test_orm.py": 34,
    "tests/streams/test_uploads.py": 33,
    "tests/integration/test_status.py": 31,
    "tests/replication/test_shipping.py": 31,
    "tests/bindings/test_d1.py": 26,
    "tests/gateway/test_init.py": 26,
    "tests/integration/test_host_failure.py": 26,
    "tests/bindings/test_r2_inert.py": 25,
    "tests/gates/test_output_gate.py": 24,
}
"""Seconds each file took in a whole run (suite run s16b's JUnit times, setup included, 2
workers, a 2-core machine): only the order matters, and a file not listed goes after these,
in the order it was found."""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first (a stable sort: a file's tests keep their order)."""
    items.sort(key=lambda item: -LONGEST_FILES.get(item.path.relative_to(REPO).as_posix(), 0))


_CLUSTER = RayCluster(make_temp_dir("rdt-"))
# Before anything imports ray: its auth settings are read at import.
_CLUSTER.use_private_token()


def pytest_unconfigure(config: pytest.Config) -> None:
    _CLUSTER.stop()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A Ray cluster on 127.0.0.1 for the whole session; this process joins it as a driver."""
    import ray

    from raydo.actors.placement import join_ray

    cluster = _CLUSTER
    cluster.start()
    join_ray(cluster.address)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.stop()


@pytest.fixture
def kill_hosts_after() -> Iterator[Callable[[Path], Path]]:
    """Register an app folder whose Ray hosts die when the test ends (whatever its outcome)."""
    doomed: list[Path] = []

    def register(app_dir: Path) -> Path:
        doomed.append(app_dir)
        return app_dir

    yield register
    if doomed:
        from tests.hosts import kill_hosts  # imports ray: only once the cluster is joined

        for app_dir in doomed:
            kill_hosts(app_dir)


@pytest.fixture
def name() -> str:
    """A fresh object name."""
    return fresh_name()


@pytest.fixture
def app_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy an app folder (``examples/<name>`` or ``tests/apps/<name>``) under a unique app name."""

    def copy(name: str) -> Path:
        for base in (REPO / "examples", REPO / "tests" / "apps"):
            if (base / name).is_dir():
                return copy_app(base / name, tmp_path)
        raise LookupError(name)

    return copy


@pytest.fixture
async def app(app_dir: Path) -> AsyncIterator[TestApp]:
    """The module's app (its ``app_dir`` fixture) served in-process for the test.

    Suites that run on both placements override this with one that takes ``placement``.
    """
    from raydo.gateway.testing import CONFIGURED_STORAGE, start_app

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        yield app


@pytest.fixture
def gateway(ray_cluster: RayCluster, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``raydo serve`` processes joined to the session cluster; all stop after the test."""
    servers: list[Server] = []

    def start(app_dir: Path, *, workers: int = 1, args: Sequence[str] = ()) -> Server:
        server = serve(app_dir, ray_cluster, tmp_path, workers=workers, args=args)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
