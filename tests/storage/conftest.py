"""Fixtures for the storage tests: real SQLite files under ``tmp_path``, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from raydo.storage import ObjectStorage


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's object file lives (its folder is made on the first write)."""
    return tmp_path / "obj" / "object.sqlite"


@pytest.fixture
def make_storage(db_path: Path) -> Iterator[Callable[..., ObjectStorage]]:
    """Build storages (default: on ``db_path``); every one is closed when the test ends."""
    made: list[ObjectStorage] = []

    def make(path: Path | None = None, **kwargs: Any) -> ObjectStorage:
        storage = ObjectStorage(db_path if path is None else path, **kwargs)
        made.append(storage)
        return storage

    yield make
    for storage in made:
        storage.close()


@pytest.fixture
def storage(make_storage: Callable[..., ObjectStorage]) -> ObjectStorage:
    return make_storage()
