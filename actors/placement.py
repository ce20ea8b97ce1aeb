"""Where hosts run: in this process (:class:`LocalPlacement`) or in Ray actors
(:func:`ray_placement`).

Ray is imported only when a Ray placement is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._heap import freeze_startup_heap
from ._local import LocalPlacement
from ._placement import Placement
from ._spec import RuntimeSpec

if TYPE_CHECKING:
    from ._ray import RayPlacement


def ray_placement(spec: RuntimeSpec, *, bind: str = "127.0.0.1") -> RayPlacement:
    """Hosts in detached Ray actors; ``bind`` is where hosts listen ("node" for the node's IP)."""
    from ._ray import RayPlacement

    return RayPlacement(spec, bind=bind)


def start_local_ray() -> None:
    """Start an embedded single-node Ray in this process."""
    from ._ray import start_local_ray as start

    start()


def ray_runtime() -> str:
    """The storage-folder runtime id of the Ray cluster this process is connected to."""
    from ._ray import ray_runtime as runtime

    return runtime()


def join_ray(address: str) -> None:
    """Join the Ray cluster at ``address`` ("auto" finds a local one)."""
    from ._ray import join_ray as join

    join(address)


__all__ = [
    "LocalPlacement",
    "Placement",
    "freeze_startup_heap",
    "join_ray",
    "ray_placement",
    "ray_runtime",
    "start_local_ray",
]
