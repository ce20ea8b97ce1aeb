"""The database binding (``[[d1_databases]]``, ``env.DB``): Cloudflare D1's shape in Python.

::

    row = await env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(7).first()
    await env.DB.batch([insert.bind("a"), insert.bind("b")])   # all or nothing

The client is :class:`D1Database` (``_client``); each database is one object of the internal
binding ``_D1`` (``_object``); ``_migrations`` applies a database's numbered ``.sql`` files
(``raydo db migrations``); ``_plan`` turns the config entries into the bindings.
"""

from ._client import (
    D1Database,
    D1Error,
    D1ExecResult,
    D1Meta,
    D1Result,
    D1Rows,
    PreparedStatement,
)
from ._migrations import (
    MIGRATIONS_TABLE,
    Migration,
    MigrationError,
    MigrationFailed,
    MigrationStatus,
    apply_migrations,
    find_migrations,
    migration_status,
)
from ._plan import INTERNAL_BINDING, database_binding, plan

__all__ = [
    "INTERNAL_BINDING",
    "MIGRATIONS_TABLE",
    "D1Database",
    "D1Error",
    "D1ExecResult",
    "D1Meta",
    "D1Result",
    "D1Rows",
    "Migration",
    "MigrationError",
    "MigrationFailed",
    "MigrationStatus",
    "PreparedStatement",
    "apply_migrations",
    "database_binding",
    "find_migrations",
    "migration_status",
    "plan",
]
