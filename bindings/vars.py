"""Plain values on ``env``: ``[vars]`` and secrets (``env.API_HOST``, ``env.API_TOKEN``).

Each becomes a :class:`actors.PlatformSpec` whose factory hands back the value itself, so the
gateway processes and the hosts see the same ``env``. A value is a string, number or bool, or
lists and tables of them (wrangler's JSON vars); every process gets its own copy.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from raydo.actors import PlatformContext, PlatformSpec
from raydo.bindings import Plan


def plan(values: Mapping[str, object], secrets: Mapping[str, str]) -> Plan:
    """One ``env`` binding per var and per secret (the names are checked unique by the
    config loader)."""
    return Plan(
        platform=[
            PlatformSpec(name, "raydo.bindings.vars:make_value", {"value": value})
            for name, value in {**values, **secrets}.items()
        ]
    )


def make_value(ctx: PlatformContext) -> object:
    """``env.<NAME>`` in this process: the configured value (a copy, so one handler's change
    to a table reaches no other)."""
    return copy.deepcopy(ctx.options["value"])
