"""Fixtures for the storage tests: real SQLite files under ``tmp_path``, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from raydo.storage import ObjectStorage, StorageCore


class StandaloneStorage(ObjectStorage):
    """``ctx.storage`` on a core of its own, with the core at hand as ``core`` for what a host
    does around events (rollback, close) and for looking inside."""

    __slots__ = ("core",)

    def __init__(self, path: Path, **kwargs: Any) -> None:
        core = StorageCore(path, **kwargs)
        super().__init__(core)
        self.core = core

    def rollback(self) -> None:
        self.core.rollback()

    def close(self) -> None:
        self.core.close()

    @property
    def path(self) -> Path:
        return self.core.path

    @property
    def durability(self) -> str:
        return self.core.durability

    @property
    def is_open(self) -> bool:
        return self.core.is_open

    @property
    def size_bytes(self) -> int:
        return self.core.size_bytes

    @property
    def in_explicit_transaction(self) -> bool:
        return self.core.in_explicit_transaction


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's object file lives (its folder is made on the first write)."""
    return tmp_path / "obj" / "object.sqlite"


@pytest.fixture
def make_storage(db_path: Path) -> Iterator[Callable[..., StandaloneStorage]]:
    """Build storages (default: on ``db_path``); every one is closed when the test ends."""
    made: list[StandaloneStorage] = []

    def make(path: Path | None = None, **kwargs: Any) -> StandaloneStorage:
        storage = StandaloneStorage(db_path if path is None else path, **kwargs)
        made.append(storage)
        return storage

    yield make
    for storage in made:
        storage.close()


@pytest.fixture
def storage(make_storage: Callable[..., StandaloneStorage]) -> StandaloneStorage:
    return make_storage()
