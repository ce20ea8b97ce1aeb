"""Fixtures of the actors tests: the sample objects' class attributes cleared around every
test, and ``place`` for in-process hosts under ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from raydo.actors import BindingSpec
from raydo.actors.placement import LocalPlacement
from tests.actors import sample_objects

from ._support import Place, make_spec


@pytest.fixture(autouse=True)
def _fresh_sample_objects() -> Iterator[None]:
    sample_objects.reset()
    yield
    sample_objects.reset()


@pytest.fixture
async def place(tmp_path: Path) -> AsyncIterator[Place]:
    """Place bindings on in-process hosts with storage under ``tmp_path``; every placement made
    is closed when the test ends, in the order they were made."""
    made: list[LocalPlacement] = []

    def make(*bindings: BindingSpec, **options: Any) -> LocalPlacement:
        placement = LocalPlacement(make_spec(tmp_path, *bindings, **options))
        made.append(placement)
        return placement

    yield make
    for placement in made:
        await placement.close()
