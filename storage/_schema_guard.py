"""The schema check after user SQL: no ``_raydo_*`` object is created, renamed, dropped or named.

SQLite's authorizer sees a statement when it is prepared, and not everything it will do: the
new name of a renamed table or column (``RENAME TO/**/_raydo_x``), the tables a view's or a
trigger's body names, a cached statement that runs again without a new prepare. So after
every user statement that may have changed the schema, :class:`SchemaGuard` looks at the
result instead of the text, cheaply:

1. Only statements that may change the schema are checked: those whose prepare reported a
   schema action to the authorizer, and the recent texts that did (:meth:`SchemaGuard.
   may_change`), since a cached statement runs again without being prepared again.
2. ``PRAGMA schema_version`` tells whether the schema changed at all; only then is
   ``sqlite_master`` read, and only its rows that name ``_raydo_`` somewhere.
3. raydo's own tables (and their automatic indexes) must be exactly as they were before user
   SQL ran; any other row that is named, or names something, ``_raydo_*`` (a trigger, a view,
   an index, a foreign key, a column) is refused.
"""

from __future__ import annotations

import re
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from ._tables import INTERNAL_PREFIX, TAG

Run = Callable[[str], sqlite3.Cursor]
"""Runs one internal (trusted, tagged) statement: :meth:`storage.StorageCore.internal`."""

SchemaRow = tuple[str, str, str, str | None]
"""A row of ``sqlite_master``: type, name, table name, SQL."""

_SCHEMA_VERSION = f"{TAG}PRAGMA schema_version"
_MENTIONS = (
    f"{TAG}SELECT type, name, tbl_name, sql FROM sqlite_master"
    r" WHERE name LIKE '\_raydo\_%' ESCAPE '\' OR tbl_name LIKE '\_raydo\_%' ESCAPE '\'"
    r" OR sql LIKE '%\_raydo\_%' ESCAPE '\'"
)
# A name starts with "_raydo_" where no identifier character stands before it: quoted
# ("_raydo_kv", [_raydo_kv], `_raydo_kv`), qualified (main._raydo_kv) or bare. Also a string
# literal that spells one: refused too, which costs a user nothing real.
_NAMES_INTERNAL = re.compile(r"(?<![0-9A-Za-z_$\u0080-\U0010ffff])_raydo_", re.IGNORECASE)


class SchemaGuard:
    """Remembers raydo's own schema rows and checks the schema after user statements."""

    __slots__ = ("_own", "_recent_ddl", "_recent_limit", "_version")

    def __init__(self, statement_cache_size: int) -> None:
        self._version: int | None = None
        self._own: frozenset[SchemaRow] = frozenset()
        # At least as many texts as the connection's statement cache holds, most recent last:
        # every schema-changing statement still in that cache is in here too.
        self._recent_ddl: OrderedDict[str, None] = OrderedDict()
        self._recent_limit = max(statement_cache_size, 1)

    @property
    def ready(self) -> bool:
        """True while the remembered schema is the file's (see :meth:`remember`)."""
        return self._version is not None

    def forget(self) -> None:
        """raydo itself changed the schema, or a rollback may have: remember it again before
        the next user statement."""
        self._version = None

    def remember(self, run: Run) -> None:
        """Take the schema as it is now (raydo's own doing, or already checked) as good."""
        self._version = int(run(_SCHEMA_VERSION).fetchone()[0])
        self._own = frozenset(row for row in rows_naming_internal(run) if is_own(row))

    def may_change(self, statement: str, prepared_as_ddl: bool) -> bool:
        """Whether ``statement`` (just run, or just failed) may have changed the schema:
        ``prepared_as_ddl`` when the authorizer saw a schema action while it was prepared."""
        recent = self._recent_ddl
        if prepared_as_ddl:
            recent[statement] = None
            recent.move_to_end(statement)
            if len(recent) > self._recent_limit:
                recent.popitem(last=False)
            return True
        if statement in recent:
            recent.move_to_end(statement)
            return True
        return False

    def check(self, run: Run) -> str | None:
        """Why the schema as it is now is refused, or None (and it is remembered as good)."""
        version = int(run(_SCHEMA_VERSION).fetchone()[0])
        if version == self._version:
            return None
        own: set[SchemaRow] = set()
        for row in rows_naming_internal(run):
            if is_own(row):
                own.add(row)
            else:
                return refusal_of(row)
        if own != self._own:
            changed = sorted(row[1] for row in own.symmetric_difference(self._own))
            return (
                f"the statement would create, rename or drop {', '.join(changed)}:"
                f" tables named {INTERNAL_PREFIX}* belong to raydo"
            )
        self._version = version
        return None


def rows_naming_internal(run: Run) -> Iterable[SchemaRow]:
    """The rows of ``sqlite_master`` that are named ``_raydo_*``, are on such a table, or name
    one in their SQL."""
    rows: list[Any] = run(_MENTIONS).fetchall()
    for kind, name, table, sql in rows:
        if _named_internal(name) or _named_internal(table) or _NAMES_INTERNAL.search(sql or ""):
            yield (kind, name, table, sql)


def _named_internal(name: str | None) -> bool:
    return name is not None and name.lower().startswith(INTERNAL_PREFIX)


def is_own(row: SchemaRow) -> bool:
    """A plain table named ``_raydo_*``, or SQLite's automatic index of one; whether it is
    raydo's is told by comparing with the remembered schema."""
    kind, name, table, sql = row
    if kind == "table":
        return name == table and _named_internal(name) and not _is_virtual(sql)
    return kind == "index" and name.startswith("sqlite_autoindex_") and _named_internal(table)


def _is_virtual(sql: str | None) -> bool:
    return sql is None or sql.lstrip()[:14].upper() == "CREATE VIRTUAL"


def refusal_of(row: SchemaRow) -> str:
    """Why a row that :func:`is_own` says is not raydo's is refused."""
    kind, name, table, _ = row
    return f"the {kind} {name!r} {_why(kind, name, table)}"


def _why(kind: str, name: str, table: str) -> str:
    if _named_internal(name):
        return f"is not allowed: names starting with {INTERNAL_PREFIX} belong to raydo"
    if kind != "table" and _named_internal(table):
        return f"is not allowed: it is on {table}, and {INTERNAL_PREFIX}* tables belong to raydo"
    return f"is not allowed: it names a {INTERNAL_PREFIX}* name, and those belong to raydo"


def schema_refusal(reason: str) -> str:
    """The message user SQL gets when the schema check refused what it did."""
    return f"{reason}; the event's writes were rolled back"
