"""Cron triggers (``[triggers] crons`` in ``raydo.toml``, ``triggers.crons`` in wrangler's
files): standard five-field cron expressions, in UTC, calling the app's ``scheduled``
handler once per scheduled time.

::

    async def scheduled(controller, env):   # in main's module (or [triggers] handler)
        print(controller.cron, controller.scheduled_time)

One object of the internal binding ``_CRON`` (``_object``) owns the schedule: the next due
time of every expression lives in its SQLite file and its alarm is set to the earliest. Its
host is a standing host (started with the gateway), so the alarm fires with no traffic, a
restart re-arms it from the alarm index, and however many gateway processes run, one object
runs each time once. ``_plan`` turns the config into the binding; ``_schedule`` parses and
steps expressions with ``croniter``.
"""

from ._object import CRON_BINDING, CRON_OBJECT, ScheduledController
from ._plan import make_schedule, plan, run_scheduled, start_schedule
from ._schedule import CronError, check_cron, next_after

__all__ = [
    "CRON_BINDING",
    "CRON_OBJECT",
    "CronError",
    "ScheduledController",
    "check_cron",
    "make_schedule",
    "next_after",
    "plan",
    "run_scheduled",
    "start_schedule",
]
