"""The outbox: every email "sent" and every job given up on, keyed by the queue message's id.

Queues deliver at least once, so recording is idempotent: a message delivered twice (its
consumer's host died before acknowledging it) is recorded once.
"""

from __future__ import annotations

import time
from typing import Any

from raydo.actors import DurableObject, ObjectContext


class Outbox(DurableObject):
    def __init__(self, ctx: ObjectContext, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec(
            "CREATE TABLE IF NOT EXISTS emails (id TEXT PRIMARY KEY, recipient TEXT NOT NULL,"
            " subject TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,"
            " at REAL NOT NULL)"
        )

    async def record(
        self, message_id: str, job: dict[str, Any], status: str, attempts: int
    ) -> bool:
        """Record a job as "sent" or "dead"; False when that message was recorded already."""
        cursor = self.ctx.storage.sql.exec(
            "INSERT OR IGNORE INTO emails (id, recipient, subject, status, attempts, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            message_id,
            job["to"],
            job["subject"],
            status,
            attempts,
            time.time(),
        )
        return cursor.rows_written == 1

    async def emails(self, status: str) -> list[dict[str, Any]]:
        return self.ctx.storage.sql.exec(
            "SELECT id, recipient AS 'to', subject, attempts FROM emails WHERE status = ?"
            " ORDER BY at, id",
            status,
        ).fetchall()
