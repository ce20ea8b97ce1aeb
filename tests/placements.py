"""Where a test's hosts run: in this process, or in the session's Ray cluster.

The ``placement`` fixture (registered by the root conftest) is ``start_app``'s keyword
arguments for one of the two; a test that takes it, directly or through an app fixture, runs
once for each. ``local_only`` pins such a test to in-process hosts.

A suite whose tests can share one started app (each uses its own object names) binds
``placement = placement_per_module()`` in its conftest or module: its tests then run on one
placement and then the other, and a module-scoped app fixture starts once for each, so Ray
hosts start once per module rather than once per test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Placement = dict[str, Any]
"""``start_app`` keyword arguments: ``{}`` for in-process hosts, ``{"ray": True}`` for Ray."""

local_only = pytest.mark.parametrize("placement", ["local"], indirect=True)


PLACEMENTS = ["local", pytest.param("ray", marks=pytest.mark.ray)]


def _placement(request: pytest.FixtureRequest) -> Placement:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        return {"ray": True}
    return {}


@pytest.fixture(params=PLACEMENTS)
def placement(request: pytest.FixtureRequest) -> Placement:
    """``start_app`` keyword arguments: hosts in this process, or in the session's Ray cluster."""
    return _placement(request)


def placement_per_module() -> Callable[..., Placement]:
    """A ``placement`` fixture of module scope (bind it as ``placement``)."""

    @pytest.fixture(scope="module", params=PLACEMENTS, name="placement")
    def per_module(request: pytest.FixtureRequest) -> Placement:
        """As ``placement``, for a whole module at a time."""
        return _placement(request)

    return per_module
