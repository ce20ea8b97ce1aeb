"""One runtime per storage folder, between real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from raydo.storage.folder_lock import FolderInUse, FolderLock, live_holder

HOLD = """
import sys, time
from pathlib import Path
from raydo.storage.folder_lock import FolderLock
lock = FolderLock(Path(sys.argv[1]), sys.argv[2])
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def hold(folder: Path, runtime: str) -> subprocess.Popen[str]:
    """Another process that claims ``folder`` for ``runtime`` and keeps it until killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), runtime], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def stop(holder: subprocess.Popen[str]) -> None:
    """Kill a holder and close its pipe (an open pipe is a ResourceWarning when collected)."""
    holder.kill()
    holder.wait()
    assert holder.stdout is not None
    holder.stdout.close()


def test_a_second_runtime_is_refused_with_the_folder_and_the_holder(tmp_path: Path) -> None:
    holder = hold(tmp_path, "ray:cluster-a")
    try:
        with pytest.raises(FolderInUse) as refused:
            FolderLock(tmp_path, "process:other").acquire()
        message = str(refused.value)
        assert str(tmp_path) in message
        assert f"pid {holder.pid} on {socket.gethostname()}" in message
        assert "ray:cluster-a" in message
        assert refused.value.holder is not None and refused.value.holder.pid == holder.pid
        found = live_holder(tmp_path)
        assert found is not None and found.runtime == "ray:cluster-a"
    finally:
        stop(holder)


def test_processes_of_one_runtime_share_the_folder(tmp_path: Path) -> None:
    first = hold(tmp_path, "ray:cluster-a")
    second = hold(tmp_path, "ray:cluster-a")  # a second gateway worker, or a host
    try:
        joined = FolderLock(tmp_path, "ray:cluster-a")
        joined.acquire()
        stop(first)
        # The runtime lives on in its other processes: still refused to anyone else.
        with pytest.raises(FolderInUse):
            FolderLock(tmp_path, "process:other").acquire()
        joined.release()
    finally:
        stop(second)


def test_the_folder_is_free_once_the_holder_dies_even_by_sigkill(tmp_path: Path) -> None:
    holder = hold(tmp_path, "process:dev")
    os.kill(holder.pid, signal.SIGKILL)
    stop(holder)  # already dead: this reaps it and closes its pipe
    assert live_holder(tmp_path) is None
    lock = FolderLock(tmp_path, "process:next")
    lock.acquire()
    assert lock.held
    lock.release()
    assert live_holder(tmp_path) is None


def test_two_runtimes_in_one_process_are_refused_too(tmp_path: Path) -> None:
    first = FolderLock(tmp_path, "process:a")
    first.acquire()
    try:
        with pytest.raises(FolderInUse):
            FolderLock(tmp_path, "process:b").acquire()
    finally:
        first.release()
