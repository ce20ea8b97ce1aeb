"""One runtime per storage folder: the lock every process of a runtime holds on its folder.

A *runtime* is everything that serves one app's storage together: one ``raydo dev`` (its
gateway and its embedded Ray's hosts), one Ray cluster under ``raydo serve`` (every gateway
worker and every host, on every machine), one ``start_app`` of the test harness. Its
processes share the folder by design; two runtimes on one folder lose acknowledged writes,
silently, so the second is refused.

How, in order, when a process claims ``<folder>/.runtime.lock`` for runtime ``R``:

1. It takes ``<folder>/.runtime.guard`` exclusively (``flock``), so claims happen one at a
   time; the guard is held for microseconds.
2. If no live process holds the lock file (an exclusive ``flock`` succeeds), the folder is
   free: it writes the holder record (``R``, its pid, host name and command line) into the
   lock file and keeps a shared lock on it.
3. Otherwise it reads the record: the same ``R`` joins (a shared lock); another runtime is
   refused with :class:`FolderInUse`, naming the folder and the holder.

Locks belong to processes: a process that dies, even by SIGKILL, lets go of its share, and the
folder is free once the last process of the runtime is gone; nothing stale is left to clean.
What holds where: on one machine, always. On a cluster, each node's folder is its own (object
files live on the node that hosts them), and every process that uses a folder claims it; a
folder on a network file system is guarded only as far as that file system honours ``flock``
across machines (NFSv4 on Linux does, many others do not).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from .owner_only import make_folders, opener

LOCK_NAME = ".runtime.lock"
GUARD_NAME = ".runtime.guard"
#: The files a runtime keeps at the top of its storage folder (everything else is data).
RUNTIME_FILES = (LOCK_NAME, GUARD_NAME)


@dataclass(frozen=True, slots=True)
class Holder:
    """The runtime that holds a folder, and the process of it that claimed the folder first."""

    runtime: str
    pid: int
    host: str
    command: str

    @classmethod
    def this_process(cls, runtime: str) -> Holder:
        return cls(runtime, os.getpid(), socket.gethostname(), " ".join(sys.argv) or "python")

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.command}), runtime {self.runtime}"


class FolderInUse(RuntimeError):
    """Another runtime serves this storage folder: the message names the folder and holder."""

    def __init__(self, folder: Path, holder: Holder | None) -> None:
        self.folder = folder
        self.holder = holder
        who = "another runtime" if holder is None else holder.describe()
        super().__init__(
            f"the storage folder {folder} is in use by {who}; stop it first, or give this"
            " runtime its own folder (storage = ... in raydo.toml)"
        )


class FolderLock:
    """This process's share of the lock on ``folder`` for ``runtime``; :meth:`release` it,
    or let the process end."""

    def __init__(self, folder: Path, runtime: str) -> None:
        self.folder = folder
        self.runtime = runtime
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        """Claim the folder (steps 1-3 above); raises :class:`FolderInUse` if another runtime
        holds it. Claiming again in a process that holds it does nothing."""
        if self._file is not None:
            return
        make_folders(self.folder)
        with open(self.folder / GUARD_NAME, "a", opener=opener) as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # released when the file closes
            lock = open(self.folder / LOCK_NAME, "a+", opener=opener)  # noqa: SIM115 - held past this block
            try:
                self._claim(lock)
            except BaseException:
                lock.close()
                raise
        self._file = lock

    def _claim(self, lock: IO[str]) -> None:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(lock)
            if holder is None or holder.runtime != self.runtime:
                raise FolderInUse(self.folder, holder) from None
            fcntl.flock(lock, fcntl.LOCK_SH)  # same runtime: only shared locks are held
            return
        lock.seek(0)
        lock.truncate()
        lock.write(json.dumps(asdict(Holder.this_process(self.runtime))))
        lock.flush()
        # Downgrading is not atomic, but every claimant waits on the guard we hold.
        fcntl.flock(lock, fcntl.LOCK_SH)

    def release(self) -> None:
        """Give up this process's share (the folder is free when no process holds one)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def live_holder(folder: Path) -> Holder | None:
    """Who holds ``folder`` now, without claiming it: None when no live process does (a
    command checks this before a slow start-up, to refuse at once)."""
    if not (folder / LOCK_NAME).exists():
        return None
    with open(folder / GUARD_NAME, "a", opener=opener) as guard, open(folder / LOCK_NAME) as lock:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(lock) or Holder("unknown", 0, "?", "?")
        return None


def read_holder(lock: IO[str]) -> Holder | None:
    """The holder record in an open lock file, or None when it is unreadable."""
    lock.seek(0)
    with contextlib.suppress(ValueError, TypeError):
        return Holder(**json.loads(lock.read()))
    return None


def process_runtime() -> str:
    """A runtime id of its own for this process (a runtime without Ray, or a test harness)."""
    return f"process:{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
