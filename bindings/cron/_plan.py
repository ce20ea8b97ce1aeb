"""What ``[triggers] crons`` adds to an app: the ``_CRON`` object binding and the internal
``_CRON_SCHEDULE`` binding naming the handler; the gateway's start-up call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raydo.actors import (
    BindingSpec,
    Namespace,
    PlatformContext,
    PlatformSpec,
    RuntimeSpec,
    import_from_app,
)
from raydo.actors.placement import Placement
from raydo.bindings import Plan

from ._object import CRON_BINDING, CRON_OBJECT, SCHEDULE

HANDLER_SECONDS = 900.0
"""Wall time of one run (as a Worker's scheduled handler may take)."""


def plan(crons: Sequence[str], handler: str) -> Plan:
    """Nothing without crons; else the schedule's object and the handler's reference."""
    if not crons:
        return Plan()
    binding = BindingSpec(
        name=CRON_BINDING,
        class_name="raydo.bindings.cron._object:CronObject",
        shards=1,
        idle_timeout_s=60.0,
        event_seconds=HANDLER_SECONDS,
        cpu_ms=int(HANDLER_SECONDS * 1000),
        internal=True,
    )
    schedule = PlatformSpec(
        SCHEDULE,
        "raydo.bindings.cron:make_schedule",
        {"crons": list(crons), "handler": handler},
        internal=True,
    )
    return Plan(objects=[binding], platform=[schedule])


class Schedule:
    """The crons and the handler's reference."""

    def __init__(self, crons: list[str], reference: str, app_root: str) -> None:
        self.crons = crons
        self.reference = reference
        self._app_root = app_root

    def handler(self) -> Any:
        """The handler, imported for each run (raises when it cannot be): after ``raydo dev``
        reloads the app's code, the next run takes the new one."""
        found = import_from_app(self._app_root, self.reference)
        if not callable(found):
            raise TypeError(f"the scheduled handler {self.reference} is not a function")
        return found


def make_schedule(ctx: PlatformContext) -> Schedule:
    return Schedule(list(ctx.options["crons"]), str(ctx.options["handler"]), ctx.runtime.app_root)


def _stub(placement: Placement, spec: RuntimeSpec) -> Any:
    namespace = Namespace(spec.binding(CRON_BINDING), placement)
    return namespace.get(namespace.id_from_name(CRON_OBJECT))


def _crons(spec: RuntimeSpec) -> list[str] | None:
    for platform in spec.platform:
        if platform.name == SCHEDULE:
            return list(platform.options["crons"])
    return None


async def start_schedule(placement: Placement, spec: RuntimeSpec) -> dict[str, int] | None:
    """At a gateway's start: make the schedule object's crons the config's, arming its
    alarm; ``{cron: next_ms}``, or None when the app has no crons."""
    crons = _crons(spec)
    if crons is None:
        return None
    schedule: dict[str, int] = await _stub(placement, spec).ensure(crons)
    return schedule


async def run_scheduled(placement: Placement, spec: RuntimeSpec, cron: str) -> bool:
    """Run the handler now for ``cron`` (``/__scheduled`` in dev); whether it succeeded."""
    ok: bool = await _stub(placement, spec).run(cron)
    return ok
