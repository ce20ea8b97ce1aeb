"""Errors raised by an object's storage."""

from __future__ import annotations


class StorageError(Exception):
    """Base of the errors raised by ``ctx.storage``."""


class SqlError(StorageError):
    """SQLite refused a statement; the message is SQLite's, plus why raydo refused it if it did."""

    def __init__(self, message: str, sqlite_errorname: str | None = None) -> None:
        super().__init__(message)
        self.sqlite_errorname = sqlite_errorname


class TransactionError(StorageError):
    """A storage call that is not allowed where it was made (for example inside a transaction)."""
