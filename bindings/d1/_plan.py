"""What ``[[d1_databases]]`` adds to an app: the internal ``_D1`` binding and ``env.DB``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from raydo.actors import BindingSpec, PlatformContext, PlatformSpec
from raydo.bindings import Plan

from ._client import D1Database

#: The internal object binding every database of an app lives in.
INTERNAL_BINDING = "_D1"
_OBJECT_CLASS = "raydo.bindings.d1._object:DatabaseObject"
_FACTORY = "raydo.bindings.d1:database_binding"


def plan(entries: Sequence[Mapping[str, Any]]) -> Plan:
    """The internal ``_D1`` binding (when there are databases) and one ``env`` binding per
    ``[[d1_databases]]`` entry."""
    result = Plan()
    if not entries:
        return result
    result.objects.append(
        BindingSpec(
            name=INTERNAL_BINDING,
            class_name=_OBJECT_CLASS,
            # One host for every database of the app: a database is a single writer however
            # many hosts there are, and a fixed count keeps each database's host stable.
            shards=1,
            # Keep the database's file open between bursts; reopening costs a millisecond.
            idle_timeout_s=300.0,
            internal=True,
            **_event_limits(entries),
        )
    )
    for entry in entries:
        result.platform.append(
            PlatformSpec(name=str(entry["binding"]), factory=_FACTORY, options=dict(entry))
        )
    return result


def _event_limits(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The time limits of the one host every database shares: for each, the largest any
    entry allows (an entry without the key allows the default)."""
    defaults = BindingSpec(INTERNAL_BINDING, _OBJECT_CLASS)
    return {
        key: max(entry.get(key, getattr(defaults, key)) for entry in entries)
        for key in ("cpu_ms", "event_seconds")
    }


def database_binding(ctx: PlatformContext) -> D1Database:
    """The factory every process calls for each ``[[d1_databases]]`` entry."""
    return D1Database(ctx.namespace(INTERNAL_BINDING), str(ctx.options["database_name"]))
