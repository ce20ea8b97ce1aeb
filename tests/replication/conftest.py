"""Fixtures of the replication tests: both S3-compatible servers (session-wide, stopped at
the end), the test credentials in the environment, and a fresh prefix per test."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster import make_temp_dir

from .stores import CREDENTIALS, StoreServer, moto_server, seaweedfs_server


@pytest.fixture(scope="session")
def store_credentials() -> Iterator[None]:
    """The test credentials where boto3 (and so raydo) reads them, for the session."""
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def moto_store(store_credentials: None) -> Iterator[StoreServer]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def seaweedfs_store(store_credentials: None) -> Iterator[StoreServer]:
    folder = make_temp_dir("rdweed-")
    try:
        with seaweedfs_server(Path(folder)) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["moto", "seaweedfs"])
def store_server(request: pytest.FixtureRequest) -> StoreServer:
    """Each test that takes it runs against both servers."""
    server: StoreServer = request.getfixturevalue(f"{request.param}_store")
    return server


@pytest.fixture
def prefix() -> str:
    """A prefix of the bucket no other test writes under."""
    return f"t-{uuid.uuid4().hex[:12]}"


ReplicatedApp = Callable[..., Path]


@pytest.fixture
def replicated_app(app_copy: Callable[[str], Path], prefix: str) -> ReplicatedApp:
    """A copy of ``tests/apps/replicated`` (or ``app``) replicating to ``server`` under the
    test's prefix; keyword arguments become keys of its ``[replication]``."""

    def make(server: StoreServer, app: str = "replicated", **options: object) -> Path:
        folder = app_copy(app)
        lines = [
            "",
            "[replication]",
            f'url = "s3://{server.bucket}/{prefix}"',
            f'endpoint_url = "{server.endpoint}"',
        ]
        for key, value in options.items():
            lines.append(f"{key} = {value!r}".replace("'", '"'))
        toml = folder / "raydo.toml"
        toml.write_text(toml.read_text() + "\n".join(lines) + "\n")
        return folder

    return make
