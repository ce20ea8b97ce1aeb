"""The Ray side of the tests: find an app's host actors, kill them.

Hosts on Ray are detached named actors: ``start_app`` stops its own when its block ends, but
hosts a test starts otherwise (a ``raydo serve`` process, a placement of its own) outlive it,
so such a test kills them when it is done (see the ``kill_hosts_after`` fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raydo.actors import RuntimeSpec
from raydo.actors._ray import RAY_NAMESPACE, actor_name
from raydo.actors._ray import kill_hosts as kill_spec_hosts
from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec

__all__ = ["actor_name", "host_actor", "kill_hosts", "kill_spec_hosts"]


def kill_hosts(app_dir: Path) -> None:
    """Kill every Ray host of the app in ``app_dir``."""
    kill_spec_hosts(runtime_spec(load_config(app_dir)))


def host_actor(spec: RuntimeSpec, binding: str, hex_id: str) -> Any:
    """The Ray actor handle of the host that holds object ``hex_id`` of ``binding``."""
    import ray

    key = spec.host_for(spec.binding(binding), hex_id)
    return ray.get_actor(actor_name(spec, key), RAY_NAMESPACE)
