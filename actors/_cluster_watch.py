"""Whether the cluster that runs this process's hosts can still run them.

A gateway's links to its hosts do not go through Ray, so when a part of Ray dies (the GCS,
a raylet) nothing on the data path notices: hosts that die are never restarted, and new
ones never start. :class:`ClusterWatch` notices instead, by probing the parts that matter
every ``interval`` seconds (what to probe is Ray's business: :mod:`actors._ray` makes the
probes), and says so:

1. every probe answers: the watch is ``UP``;
2. a probe fails ``failures`` times in a row (a dead process fails at once): the watch is
   ``DOWN`` with the probe's reason, and ``on_down(reason)`` runs once;
3. while it is down (and no fatal probe failed), each round asks ``recover()``: by default,
   whether every probe answers again; a placement may rejoin the cluster there. Once it
   answers ``True`` the watch is ``UP`` again;
4. :meth:`close` stops the probing task and waits for it (``CLOSED``).

While it is ``DOWN``, :meth:`check` raises :class:`HostUnavailable` with the reason, so a
caller who needs the cluster is answered at once instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ._errors import HostUnavailable

log = logging.getLogger("raydo.cluster")

PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 2.0
PROBE_FAILURES = 3
"""Failed probes in a row that make a reachable part count as down (a busy machine may be
slow to accept one connection; it is not slow three seconds in a row)."""


class ClusterState(enum.Enum):
    UP = "up"
    DOWN = "down"
    CLOSED = "closed"


_ALLOWED = {
    ClusterState.UP: {ClusterState.DOWN, ClusterState.CLOSED},
    ClusterState.DOWN: {ClusterState.UP, ClusterState.CLOSED},
    ClusterState.CLOSED: set(),
}


@dataclass(frozen=True)
class Probe:
    """One part of the cluster: ``check()`` answers ``None`` while it works, else why not.
    ``fatal`` probes watch something that cannot come back (a process this one started)."""

    what: str
    check: Callable[[], Awaitable[str | None]]
    fatal: bool = False


def process_probe(what: str, exit_code: Callable[[], int | None], log_path: str) -> Probe:
    """A process this one started: down for good once ``exit_code()`` is not ``None``."""

    async def check() -> str | None:
        code = exit_code()
        if code is None:
            return None
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"{what} {how}; its log: {log_path}"

    return Probe(what, check, fatal=True)


def tcp_probe(what: str, host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """A server of the cluster: down while it does not accept a connection."""

    async def check() -> str | None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            return f"{what} at {host}:{port} does not answer ({type(exc).__name__}: {exc})"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None

    return Probe(what, check)


class ClusterWatch:
    """Probes the cluster in a task of its own; see the module's docstring for the order."""

    def __init__(
        self,
        probes: Sequence[Probe],
        *,
        on_down: Callable[[str], None],
        recover: Callable[[], Awaitable[bool]] | None = None,
        interval: float = PROBE_INTERVAL_S,
        failures: int = PROBE_FAILURES,
    ) -> None:
        self._probes = list(probes)
        self._on_down = on_down
        self._recover = recover
        self._interval = interval
        self._failures = failures
        self._misses = [0] * len(self._probes)
        self.state = ClusterState.UP
        self.reason: str | None = None
        """Why the cluster is down (``None`` while it is up)."""
        self.down_since: float | None = None
        self._task: asyncio.Task[None] | None = None

    def _move(self, to: ClusterState) -> None:
        if to not in _ALLOWED[self.state]:
            raise RuntimeError(f"the cluster watch cannot go from {self.state.value} to {to.value}")
        self.state = to

    def start(self) -> None:
        """Start probing (inside the event loop; once)."""
        if self._task is None and self.state is not ClusterState.CLOSED:
            self._task = asyncio.ensure_future(self._run())

    def replace_probes(self, probes: Sequence[Probe]) -> None:
        """Probe these parts from now on (a rejoined cluster's, say)."""
        self._probes = list(probes)
        self._misses = [0] * len(self._probes)

    def check(self) -> None:
        """Raise :class:`HostUnavailable` (retryable) with the reason while the cluster is down."""
        if self.state is ClusterState.DOWN:
            assert self.down_since is not None
            since = time.monotonic() - self.down_since
            raise HostUnavailable(
                f"the Ray cluster cannot run hosts: {self.reason} (for {since:.0f} s;"
                " raydo keeps retrying)",
                retryable=True,
            )

    async def probe_once(self) -> None:
        """Probe every part once and move the state accordingly (the task's one step)."""
        probes = self._probes
        reasons = await asyncio.gather(*(probe.check() for probe in probes))
        down: str | None = None
        fatal = False
        for n, (probe, reason) in enumerate(zip(probes, reasons, strict=True)):
            self._misses[n] = 0 if reason is None else self._misses[n] + 1
            if reason is not None and (probe.fatal or self._misses[n] >= self._failures):
                down = down or reason
                fatal = fatal or probe.fatal
        if self.state is ClusterState.UP:
            if down is not None:
                self._move(ClusterState.DOWN)
                self.reason, self.down_since = down, time.monotonic()
                self._on_down(down)
        elif self.state is ClusterState.DOWN and not fatal:
            if self._recover is not None:
                recovered = await self._recover()
            else:
                recovered = all(reason is None for reason in reasons)
            if recovered and self.state is ClusterState.DOWN:  # not closed meanwhile
                self._move(ClusterState.UP)
                self.reason = self.down_since = None

    async def _run(self) -> None:
        while self.state is not ClusterState.CLOSED:
            try:
                await self.probe_once()
            except Exception:  # a failed rejoin, say: try again on the next round
                log.exception("watching the Ray cluster failed; trying again")
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        """Stop probing and wait until the task has ended."""
        if self.state is not ClusterState.CLOSED:
            self._move(ClusterState.CLOSED)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
