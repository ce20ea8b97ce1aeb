"""Errors raised by an object's storage."""

from __future__ import annotations

import errno


class StorageError(Exception):
    """Base of the errors raised by ``ctx.storage``."""


class SqlError(StorageError):
    """SQLite refused a statement; the message is SQLite's, plus why raydo refused it if it did."""

    def __init__(self, message: str, sqlite_errorname: str | None = None) -> None:
        super().__init__(message)
        self.sqlite_errorname = sqlite_errorname


class TransactionError(StorageError):
    """A storage call that is not allowed where it was made (for example inside a transaction)."""


class StorageFull(StorageError):
    """The disk (or quota) holding the storage has no room for the write: not a limit of
    raydo's, and nothing of the failed write was kept. It passes once space is freed, so a
    caller may try again later; the message names no path (the log does)."""


#: What the operating system says when a file may not grow: no space, no quota left, or the
#: process's file size limit.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def disk_error(exc: OSError, doing: str) -> StorageError:
    """The error to show for an OS error while ``doing`` something with a storage file:
    :class:`StorageFull` when the disk is full, else a :class:`StorageError` with the
    system's reason, both without the file's path."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in DISK_FULL_ERRNOS:
        return StorageFull(f"{doing}: the disk holding the storage is full ({reason}); try later")
    return StorageError(f"{doing}: {reason}")
