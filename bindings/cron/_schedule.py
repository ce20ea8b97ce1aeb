"""Cron expressions: checked (five fields, each time reachable) and stepped, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import CroniterBadDateError, croniter

MAX_CRON_CHARS = 256


class CronError(ValueError):
    """A cron expression raydo cannot use; the message says why."""


def check_cron(expression: object) -> str:
    """The expression, checked: five space-separated fields (minute, hour, day of month,
    month, day of week) in croniter's syntax, with at least one time to come; else
    :class:`CronError`."""
    if not isinstance(expression, str) or not expression.strip():
        raise CronError(f"expected a cron expression (a string), got {expression!r}")
    if len(expression) > MAX_CRON_CHARS or "\0" in expression:
        raise CronError(f"a cron expression is at most {MAX_CRON_CHARS} characters, no NUL")
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(
            f"{expression!r}: expected 5 fields (minute hour day-of-month month day-of-week),"
            f" got {len(fields)}"
        )
    if not croniter.is_valid(expression):
        raise CronError(f"{expression!r} is not a valid cron expression")
    try:
        next_after(expression, 0)
    except CronError:
        raise CronError(f"{expression!r} never fires") from None
    return expression


def next_after(expression: str, after_ms: int) -> int:
    """The first time (epoch ms, UTC) the expression fires strictly after ``after_ms``."""
    start = datetime.fromtimestamp(after_ms / 1000, UTC)
    try:
        due = croniter(expression, start).get_next(datetime)
    except (CroniterBadDateError, ValueError, KeyError) as exc:
        raise CronError(f"{expression!r}: {exc}") from None
    return int(due.timestamp() * 1000)
