"""The SQLite authorizer that keeps user SQL inside the object's own tables, and the
translation of SQLite's errors into the errors users see.

Every statement is checked when SQLite prepares it. Internal statements (the storage core's)
run with :attr:`Authorizer.trusted` set and a per-process tag in their text, so user SQL can
never reach a cached statement that was prepared trusted (see :mod:`storage._core`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ._tables import INTERNAL_PREFIX
from .errors import SqlError

# PRAGMAs that only read the schema or tune foreign keys; the rest could change durability,
# the journal or the file itself behind the runtime's back.
_ALLOWED_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_info",
        "index_xinfo",
        "index_list",
        "foreign_key_list",
        "foreign_key_check",
        "foreign_keys",
        "defer_foreign_keys",
        "page_count",
        "page_size",
        "freelist_count",
        "quick_check",
        "integrity_check",
        "collation_list",
        "function_list",
        "data_version",
    }
)

_TABLE_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_UPDATE,
        sqlite3.SQLITE_INSERT,
        sqlite3.SQLITE_DELETE,
        sqlite3.SQLITE_CREATE_TABLE,
        sqlite3.SQLITE_DROP_TABLE,
        sqlite3.SQLITE_ALTER_TABLE,
        sqlite3.SQLITE_CREATE_INDEX,
        sqlite3.SQLITE_DROP_INDEX,
        sqlite3.SQLITE_CREATE_TRIGGER,
        sqlite3.SQLITE_DROP_TRIGGER,
        sqlite3.SQLITE_CREATE_VIEW,
        sqlite3.SQLITE_DROP_VIEW,
        sqlite3.SQLITE_ANALYZE,
        sqlite3.SQLITE_REINDEX,
    }
)

_TEMP_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_CREATE_TEMP_TABLE,
        sqlite3.SQLITE_CREATE_TEMP_INDEX,
        sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
        sqlite3.SQLITE_CREATE_TEMP_VIEW,
        sqlite3.SQLITE_DROP_TEMP_TABLE,
        sqlite3.SQLITE_DROP_TEMP_INDEX,
        sqlite3.SQLITE_DROP_TEMP_TRIGGER,
        sqlite3.SQLITE_DROP_TEMP_VIEW,
    }
)


class Authorizer:
    """SQLite authorizer callback; remembers why it last refused, for a clear error."""

    def __init__(self) -> None:
        self.trusted = False
        self.refusal: str | None = None

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None
    ) -> int:
        if self.trusted:
            return sqlite3.SQLITE_OK
        reason = self._refuse(action, arg1, arg2, db)
        if reason is None:
            return sqlite3.SQLITE_OK
        self.refusal = reason
        return sqlite3.SQLITE_DENY

    @staticmethod
    def _refuse(action: int, arg1: str | None, arg2: str | None, db: str | None) -> str | None:
        if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            return (
                "transaction statements are not allowed in sql.exec; every event already runs in"
                " a transaction, and ctx.storage.transaction() nests one inside it"
            )
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return "ATTACH and DETACH are not allowed: an object owns exactly one database"
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if name in _ALLOWED_PRAGMAS:
                return None
            return f"PRAGMA {arg1} is not allowed (allowed: {', '.join(sorted(_ALLOWED_PRAGMAS))})"
        if action in _TEMP_ACTIONS:
            return "TEMP tables, views and triggers are not allowed"
        # A rename reads and rewrites the temp schema table as well; that is SQLite's own work.
        own_schema = arg1 == "sqlite_temp_master" and action in (
            sqlite3.SQLITE_READ,
            sqlite3.SQLITE_UPDATE,
        )
        if db == "temp" and not own_schema:
            return "TEMP tables, views and triggers are not allowed"
        if action in _TABLE_ACTIONS:
            for table in (arg1, arg2):
                if table and table.lower().startswith(INTERNAL_PREFIX):
                    return (
                        f"access to {table} is not allowed:"
                        f" tables named {INTERNAL_PREFIX}* belong to raydo"
                    )
        return None


def translate_error(
    exc: sqlite3.Error, refusal: str | None, limits_hint: Callable[[str], Exception | None]
) -> Exception:
    """Turn a sqlite3 error into the error the user should see."""
    message = str(exc)
    if refusal and ("not authorized" in message or "prohibited" in message):
        return SqlError(f"{message}: {refusal}", "SQLITE_AUTH")
    hinted = limits_hint(message)
    if hinted is not None:
        return hinted
    return SqlError(message, getattr(exc, "sqlite_errorname", None))
