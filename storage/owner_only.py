"""Files and folders under a storage folder are the owner's alone: folders 0700, files 0600.

Whatever the process's umask, every folder raydo makes under a storage folder is created
0700 (its missing parents too) and every file 0600: object files and their ``-wal``/``-shm``,
the alarm indexes, blob bodies and a bucket's index, presign secrets, the folder lock.

SQLite creates a database's ``-wal``, ``-shm`` and journal with the database file's own mode,
so a database is safe once its file is born 0600: :func:`create_database_file` makes it so
before SQLite first opens it. Modes are set with ``fchmod``/``chmod`` after creation, since a
mode given to ``open``/``mkdir`` is only ever narrowed by the umask, never made exact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def make_folders(folder: Path) -> None:
    """Make ``folder`` and any missing parents, each 0700 (folders that exist are left as
    they are: the storage folder itself may be the operator's)."""
    missing: list[Path] = []
    at = folder
    while not at.exists():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process, which makes it 0700 too
        os.chmod(path, FOLDER_MODE)


def opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that creates files 0600 (a file that already exists
    keeps its mode)."""
    fd = os.open(path, flags, FILE_MODE)
    if flags & os.O_CREAT:
        try:
            if os.fstat(fd).st_size == 0:  # new, or empty: nothing readable to protect yet
                os.fchmod(fd, FILE_MODE)
        except BaseException:
            os.close(fd)
            raise
    return fd


def create_file(path: Path) -> IO[bytes]:
    """A new file at ``path`` (``FileExistsError`` if there is one), 0600, open to write."""
    return open(path, "xb", opener=opener)


def create_database_file(path: Path) -> None:
    """Make ``path`` an empty 0600 file unless it exists, before SQLite opens it (SQLite
    then gives the database's ``-wal``, ``-shm`` and journal the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def make_private(path: Path) -> None:
    """Make a file raydo just wrote (by a library that chose its mode) 0600."""
    os.chmod(path, FILE_MODE)
