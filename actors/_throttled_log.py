"""A warning a flood cannot turn into a flood of log lines.

Doors that refuse hostile input (a forged push, a stranger on a host's port) warn when they
do, but a peer that repeats the offence thousands of times a second must not fill the log:
:class:`ThrottledWarning` logs at most once per interval and says how many it kept quiet.
"""

from __future__ import annotations

import logging
import time


class ThrottledWarning:
    """Logs a warning at most once every ``every_s`` seconds; ``count`` is every occurrence."""

    __slots__ = ("_every_s", "_last", "_log", "_quiet", "count")

    def __init__(self, log: logging.Logger, every_s: float = 10.0) -> None:
        self._log = log
        self._every_s = every_s
        self._last: float | None = None
        self._quiet = 0
        self.count = 0

    def warn(self, message: str, *args: object) -> None:
        """Count one occurrence; log it unless one was logged less than ``every_s`` ago."""
        self.count += 1
        now = time.monotonic()
        if self._last is not None and now - self._last < self._every_s:
            self._quiet += 1
            return
        quiet, self._quiet, self._last = self._quiet, 0, now
        if quiet:
            self._log.warning(message + " (and %d more since the last such warning)", *args, quiet)
        else:
            self._log.warning(message, *args)
