"""Fixtures of the replication tests: each test against both S3-compatible servers (started
once per session by :mod:`tests.s3_stores`), a fresh prefix per test, replicated apps."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from .stores import StoreServer


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
            text = str(value).lower() if isinstance(value, bool) else repr(value)
            lines.append(f"{key} = {text}".replace("'", '"'))
        toml = folder / "raydo.toml"
        toml.write_text(toml.read_text() + "\n".join(lines) + "\n")
        return folder

    return make
