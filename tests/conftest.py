"""Session-wide real infrastructure: one Ray cluster shared by every integration test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.cluster import REPO, RayCluster, Server, copy_app, make_temp_dir, serve

_CLUSTER = RayCluster(make_temp_dir("rdt-"))
# Before anything imports ray: its auth settings are read at import.
_CLUSTER.use_private_token()


def pytest_unconfigure(config: pytest.Config) -> None:
    _CLUSTER.stop()


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
def app_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy an app folder (``examples/<name>`` or ``tests/apps/<name>``) under a unique app name."""

    def copy(name: str) -> Path:
        for base in (REPO / "examples", REPO / "tests" / "apps"):
            if (base / name).is_dir():
                return copy_app(base / name, tmp_path)
        raise LookupError(name)

    return copy


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
