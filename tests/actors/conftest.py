"""Every actors test starts with the sample objects' class attributes cleared."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.actors import sample_objects


@pytest.fixture(autouse=True)
def _fresh_sample_objects() -> Iterator[None]:
    sample_objects.reset()
    yield
    sample_objects.reset()
