"""Where a test's hosts run: in this process, or in the session's Ray cluster.

The ``placement`` fixture (registered by the root conftest) is ``start_app``'s keyword
arguments for one of the two; a test that takes it, directly or through an app fixture, runs
once for each. ``local_only`` pins such a test to in-process hosts.
"""

from __future__ import annotations

from typing import Any

import pytest

Placement = dict[str, Any]
"""``start_app`` keyword arguments: ``{}`` for in-process hosts, ``{"ray": True}`` for Ray."""

local_only = pytest.mark.parametrize("placement", ["local"], indirect=True)


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def placement(request: pytest.FixtureRequest) -> Placement:
    """``start_app`` keyword arguments: hosts in this process, or in the session's Ray cluster."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        return {"ray": True}
    return {}
