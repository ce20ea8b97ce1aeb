"""The SQLite authorizer that keeps user SQL inside the object's own tables, and the
translation of SQLite's errors into the errors users see.

SQLite asks the authorizer about every action of a statement when it prepares it: each table
and column read or written, each function called, each module a virtual table is made with.
The rules are allow-lists wherever SQLite names the thing: functions (:data:`ALLOWED_FUNCTIONS`),
virtual-table modules (:data:`ALLOWED_MODULES`) and PRAGMAs. SQLite's own eponymous virtual
tables that show its internals (``sqlite_stmt``, ``dbstat``, whatever the build adds) cannot
be read. What the authorizer cannot see (the new name of a renamed table, the body of a view or
trigger) is checked on the schema after the statement ran (:mod:`storage._schema_guard`).

Internal statements (the storage core's) run with :attr:`Authorizer.trusted` set and a tag in
their text, so user SQL can never reach a cached statement that was prepared trusted (see
:mod:`storage._core`).
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable
from functools import cache

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

ALLOWED_FUNCTIONS = frozenset(
    {
        # core scalar functions
        "abs", "changes", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex",
        "ifnull", "iif", "instr", "last_insert_rowid", "length", "like", "likelihood",
        "likely", "lower", "ltrim", "max", "min", "nullif", "octet_length", "printf", "quote",
        "random", "randomblob", "replace", "round", "rtrim", "sign", "soundex", "substr",
        "substring", "total_changes", "trim", "typeof", "unhex", "unicode", "unlikely",
        "upper", "zeroblob", "sqlite_version", "sqlite_source_id",
        "sqlite_compileoption_get", "sqlite_compileoption_used",
        # date and time
        "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
        "current_date", "current_time", "current_timestamp",
        # aggregates and window functions
        "avg", "count", "group_concat", "string_agg", "sum", "total", "row_number", "rank",
        "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
        "last_value", "nth_value",
        # math
        "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos",
        "cosh", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow",
        "power", "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
        # JSON
        "json", "json_array", "json_array_length", "json_extract", "->", "->>", "json_insert",
        "json_object", "json_patch", "json_remove", "json_replace", "json_set", "json_type",
        "json_valid", "json_quote", "json_group_array", "json_group_object", "jsonb",
        # full-text search (FTS5) and its auxiliary functions
        "match", "bm25", "highlight", "snippet", "fts5_source_id",
    }
)  # fmt: skip
"""Every function user SQL may call. Left out on purpose: ``fts3_tokenizer`` (it returns and
takes raw addresses), ``load_extension``, ``fts5`` (a pointer), the R*Tree debugging functions
(they parse raw node blobs), ``sqlite_log``, FTS3's functions (FTS3 itself is not allowed), and
whatever a build adds that is not listed here (``readfile``, ``writefile`` in some)."""

# SQLite's own statements inside an ALTER TABLE call these; user SQL calling them directly
# hands raw schema text to parsers meant for SQLite's use only.
_ALTER_FUNCTIONS = frozenset(
    {
        "sqlite_rename_table",
        "sqlite_rename_column",
        "sqlite_rename_test",
        "sqlite_rename_quotefix",
        "sqlite_drop_column",
    }
)

ALLOWED_MODULES = frozenset({"fts5", "fts5vocab", "rtree", "rtree_i32"})
"""The modules ``CREATE VIRTUAL TABLE`` may use. FTS3 and FTS4 are left out: their tokenizer
interface is the route from SQL to code execution, and FTS5 does the same job."""

# Eponymous virtual tables (read as a table without being created) that only show their
# arguments' data; every other module of the build is refused when read as a table.
_READABLE_MODULES = frozenset({"json_each", "json_tree"})

_SCHEMA_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_CREATE_TABLE,
        sqlite3.SQLITE_DROP_TABLE,
        sqlite3.SQLITE_ALTER_TABLE,
        sqlite3.SQLITE_CREATE_INDEX,
        sqlite3.SQLITE_DROP_INDEX,
        sqlite3.SQLITE_CREATE_TRIGGER,
        sqlite3.SQLITE_DROP_TRIGGER,
        sqlite3.SQLITE_CREATE_VIEW,
        sqlite3.SQLITE_DROP_VIEW,
        sqlite3.SQLITE_CREATE_VTABLE,
        sqlite3.SQLITE_DROP_VTABLE,
    }
)

_TABLE_ACTIONS = _SCHEMA_ACTIONS | frozenset(
    {
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_UPDATE,
        sqlite3.SQLITE_INSERT,
        sqlite3.SQLITE_DELETE,
        sqlite3.SQLITE_ANALYZE,
        sqlite3.SQLITE_REINDEX,
    }
)

# What a statement that only reads does, as SQLite prepares it: a statement whose every action
# is one of these writes nothing (SQLite's own sqlite3_stmt_readonly, which Python lacks).
# PRAGMAs are left out even when they read: some change the connection outside a transaction.
_READ_ONLY_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
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


class InternalTables(enum.Enum):
    """What a connection's SQL may do with raydo's own ``_raydo_*`` tables."""

    REFUSED = "refused"
    """User SQL: objects, the database binding, migrations, ``objects sql --write``."""
    READABLE = "readable"
    """Read-only inspection (``raydo objects sql`` without ``--write``): the operator's view."""
    LOADABLE = "loadable"
    """Loading a dump (``raydo objects import``): raydo's tables may be created and filled."""


@cache
def sqlite_modules() -> frozenset[str]:
    """Every virtual-table module this SQLite build has (built in, so the same for every
    connection of the process)."""
    conn = sqlite3.connect(":memory:")
    try:
        return frozenset(row[0] for row in conn.execute("SELECT name FROM pragma_module_list"))
    finally:
        conn.close()


def _internals() -> frozenset[str]:
    return frozenset(
        m for m in sqlite_modules() if m not in _READABLE_MODULES and not m.startswith("pragma_")
    )


class Authorizer:
    """SQLite authorizer callback; remembers why it last refused, for a clear error, whether
    the statements it saw may change the schema (:attr:`schema_touched`) and whether they
    only read (:attr:`read_only`)."""

    __slots__ = (
        "_altering",
        "_internals",
        "_prepared",
        "_wrote",
        "internal_tables",
        "refusal",
        "schema_touched",
        "trusted",
    )

    def __init__(self, internal_tables: InternalTables = InternalTables.REFUSED) -> None:
        self.trusted = False
        self.refusal: str | None = None
        self.schema_touched = False
        """Set when a statement prepared since it was cleared creates, drops or alters."""
        self.internal_tables = internal_tables
        self._internals = _internals()
        self._altering = False  # an ALTER TABLE is being prepared: SQLite's rename helpers run
        self._prepared = False  # SQLite asked about the statement (it was prepared, not cached)
        self._wrote = False  # ... and about an action that is not a read

    def start_statement(self) -> None:
        """Forget what the statements before saw; call before running each user statement."""
        self.schema_touched = self._altering = self._prepared = self._wrote = False

    @property
    def read_only(self) -> bool:
        """True when the statement run since :meth:`start_statement` was prepared then (not
        taken from the statement cache) and SQLite asked only about reads: it can write
        nothing, whatever the schema (a SELECT fires no trigger)."""
        return self._prepared and not self._wrote

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None
    ) -> int:
        self._prepared = True
        if action not in _READ_ONLY_ACTIONS:
            self._wrote = True
        if action in _SCHEMA_ACTIONS:
            self.schema_touched = True
            if action == sqlite3.SQLITE_ALTER_TABLE:
                self._altering = True
        if self.trusted:
            return sqlite3.SQLITE_OK
        reason = self._refuse(action, arg1, arg2, db)
        if reason is None:
            return sqlite3.SQLITE_OK
        self.refusal = reason
        return sqlite3.SQLITE_DENY

    def _refuse(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None
    ) -> str | None:
        if action == sqlite3.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            if name in ALLOWED_FUNCTIONS or (self._altering and name in _ALTER_FUNCTIONS):
                return None
            return (
                f"the function {arg2} is not allowed: user SQL may call SQLite's core, date,"
                " math, JSON and FTS5 functions, not those that reach memory, files or SQLite's"
                " internals"
            )
        if action == sqlite3.SQLITE_READ and arg1 in self._internals:
            return f"reading {arg1} is not allowed: it shows SQLite's internals"
        if action == sqlite3.SQLITE_CREATE_VTABLE and (arg2 or "").lower() not in ALLOWED_MODULES:
            allowed = ", ".join(sorted(ALLOWED_MODULES))
            return f"virtual tables using {arg2} are not allowed (allowed: {allowed})"
        if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            if self.internal_tables is InternalTables.READABLE:
                return None  # a reader's own transactions, on a file it cannot write
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
                    if self._internal_allowed(action, arg1):
                        return None
                    return (
                        f"access to {table} is not allowed:"
                        f" tables named {INTERNAL_PREFIX}* belong to raydo"
                    )
        return None

    def _internal_allowed(self, action: int, arg1: str | None) -> bool:
        allowed = self.internal_tables
        if allowed is InternalTables.READABLE:
            return action == sqlite3.SQLITE_READ
        if allowed is InternalTables.LOADABLE:
            # SQLite names the index of a primary key itself when it makes the table.
            own_index = action == sqlite3.SQLITE_CREATE_INDEX and (arg1 or "").startswith(
                "sqlite_autoindex_"
            )
            return own_index or action in (
                sqlite3.SQLITE_READ,
                sqlite3.SQLITE_INSERT,
                sqlite3.SQLITE_CREATE_TABLE,
            )
        return False


def harden(conn: sqlite3.Connection) -> None:
    """What every connection raydo opens on an object's file gets, whoever runs SQL on it: no
    attached databases (so neither ``ATTACH`` nor ``VACUUM INTO`` can write a file elsewhere),
    functions in the schema only when SQLite marks them harmless, and, where the Python build
    can ask for it (3.12 and later), SQLite's defensive mode, which keeps SQL from writing
    virtual tables' shadow tables and the schema itself."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.execute("PRAGMA trusted_schema=OFF")
    setconfig = getattr(conn, "setconfig", None)
    defensive = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
    if setconfig is not None and defensive is not None:
        setconfig(defensive, True)


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
