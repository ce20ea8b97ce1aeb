"""The object that owns an app's cron schedule (internal binding ``_CRON``, one object).

Its SQLite file holds one row per expression: the next time it is due. In order:

1. ``ensure(crons)`` (every gateway calls it at start; idempotent): expressions new to the
   file get their next time after now, those gone from the config are dropped, the alarm is
   set to the earliest time.
2. ``alarm``: every expression whose time has come gets its next time after *now* (so a
   time missed while nothing ran, however many, runs once), and that is committed before the
   handler runs; then the handler runs once per such expression, in the turn, with a
   :class:`ScheduledController` naming the time it was due. A handler that raises is logged
   and counted (``failures``), not retried (as on Cloudflare): committing first means a time
   runs at most once even when the host dies mid-run.
3. ``run(cron)``: the handler now, outside the schedule (``/__scheduled`` in ``raydo dev``).
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any

from raydo.actors import ObjectContext, PlatformObject, public_env
from raydo.storage import StorageCore

from ._schedule import check_cron, next_after

CRON_BINDING = "_CRON"
CRON_OBJECT = "schedule"
SCHEDULE = "_CRON_SCHEDULE"
"""The internal platform binding naming the handler (see ``_plan``)."""
log = logging.getLogger("raydo.cron")

_SCHEMA = "CREATE TABLE IF NOT EXISTS cron_next (cron TEXT PRIMARY KEY, next_ms INTEGER NOT NULL)"


@dataclass(frozen=True, slots=True)
class ScheduledController:
    """What a ``scheduled`` handler is given: the expression and the time it was due."""

    cron: str
    scheduled_time: int
    """Epoch milliseconds (UTC) the run was due at (now, for a run asked for by hand)."""
    type: str = "scheduled"

    def no_retry(self) -> None:
        """Accepted for Cloudflare's ``noRetry()``: raydo never retries a failed run."""


def now_ms() -> int:
    return int(time.time() * 1000)


class CronObject(PlatformObject):
    def __init__(self, ctx: ObjectContext, env: Any, core: StorageCore) -> None:
        super().__init__(ctx, env, core)
        self.ctx.storage.sql.exec(_SCHEMA)

    async def ensure(self, crons: list[str]) -> dict[str, int]:
        """Make the schedule the config's: ``{cron: next_ms}``."""
        wanted = [check_cron(c) for c in crons]
        sql, now = self.ctx.storage.sql, now_ms()
        known = {str(r["cron"]): int(r["next_ms"]) for r in sql.exec("SELECT * FROM cron_next")}
        for cron in set(known) - set(wanted):
            sql.exec("DELETE FROM cron_next WHERE cron = ?", cron)
        for cron in wanted:
            if cron not in known:
                sql.exec(
                    "INSERT INTO cron_next (cron, next_ms) VALUES (?, ?)",
                    cron,
                    next_after(cron, now),
                )
        return self._arm()

    async def alarm(self, info: Any) -> None:
        sql, now = self.ctx.storage.sql, now_ms()
        due = [
            (str(r["cron"]), int(r["next_ms"]))
            for r in sql.exec("SELECT * FROM cron_next WHERE next_ms <= ?", now)
        ]
        for cron, _ in due:
            sql.exec("UPDATE cron_next SET next_ms = ? WHERE cron = ?", next_after(cron, now), cron)
        self._arm()
        self.ctx.storage.commit()  # each time runs at most once, whatever happens next
        for cron, when in due:
            await self._run(cron, when)

    async def run(self, cron: str) -> bool:
        """Run the handler now for ``cron`` (outside the schedule); whether it succeeded."""
        return await self._run(check_cron(cron), now_ms())

    async def runs(self) -> dict[str, int]:
        """Counters: ``runs`` and ``failures`` (for tests and operators)."""
        storage = self.ctx.storage
        return {"runs": int(storage.get("runs", 0)), "failures": int(storage.get("failures", 0))}

    def _arm(self) -> dict[str, int]:
        rows = self.ctx.storage.sql.exec("SELECT * FROM cron_next")
        schedule = {str(r["cron"]): int(r["next_ms"]) for r in rows}
        if schedule:
            self.ctx.storage.set_alarm(min(schedule.values()))
        else:
            self.ctx.storage.delete_alarm()
        return schedule

    async def _run(self, cron: str, when: int) -> bool:
        storage = self.ctx.storage
        controller = ScheduledController(cron=cron, scheduled_time=when)
        try:
            handler = getattr(self.env, SCHEDULE).handler()
            result = handler(controller, public_env(self.env))
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("cron %r: the scheduled handler raised (time %d)", cron, when)
            storage.put("failures", int(storage.get("failures", 0)) + 1)
            storage.commit()
            return False
        storage.put("runs", int(storage.get("runs", 0)) + 1)
        storage.commit()
        return True
