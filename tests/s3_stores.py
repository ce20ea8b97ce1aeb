"""The S3-compatible servers the tests start on 127.0.0.1 (see :mod:`tests.replication.stores`),
one of each per test process, for the session: moto's server mode and SeaweedFS. Their test
credentials are in the environment meanwhile, where boto3 (and so raydo) reads them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import make_temp_dir
from tests.replication.stores import CREDENTIALS, StoreServer, moto_server, seaweedfs_server


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
