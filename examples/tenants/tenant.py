"""One tenant's database: its projects and their tasks, in the tenant's own SQLite file.

The schema is created on the tenant's first request (``IF NOT EXISTS`` makes that a no-op
every later time the object wakes). Missing rows come back as None rather than as raised
errors: an exception escaping an event rolls the event back and resets the object, which is
for real failures, not for a 404.
"""

from __future__ import annotations

from typing import Any

from raydo.actors import DurableObject, ObjectContext

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )""",
    """CREATE TABLE IF NOT EXISTS tasks (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS tasks_by_project ON tasks(project_id)",
)


class Tenant(DurableObject):
    def __init__(self, ctx: ObjectContext, env: Any) -> None:
        super().__init__(ctx, env)
        self.sql = ctx.storage.sql
        # The constructor runs inside the first event's turn, so this commits with it.
        for statement in _SCHEMA:
            self.sql.exec(statement)

    async def create_project(self, name: str) -> dict[str, Any]:
        """Add a project; a name already used by this tenant gives back the existing one."""
        self.sql.exec("INSERT INTO projects (name) VALUES (?) ON CONFLICT DO NOTHING", name)
        row: dict[str, Any] = self.sql.exec("SELECT * FROM projects WHERE name = ?", name).one()
        return row

    async def projects(self) -> list[dict[str, Any]]:
        """Every project of this tenant with its open and done task counts."""
        return list(
            self.sql.exec(
                """SELECT p.id, p.name, p.created_at,
                          count(t.id) FILTER (WHERE t.done = 0) AS open,
                          count(t.id) FILTER (WHERE t.done = 1) AS done
                   FROM projects p LEFT JOIN tasks t ON t.project_id = p.id
                   GROUP BY p.id ORDER BY p.id"""
            )
        )

    async def add_task(self, project_id: int, title: str) -> dict[str, Any] | None:
        """A new open task in the project, or None if this tenant has no such project."""
        if not self._has_project(project_id):
            return None
        cursor = self.sql.exec(
            "INSERT INTO tasks (project_id, title) VALUES (?, ?) RETURNING *", project_id, title
        )
        row: dict[str, Any] = cursor.one()
        return row

    async def tasks(self, project_id: int) -> list[dict[str, Any]] | None:
        if not self._has_project(project_id):
            return None
        query = "SELECT * FROM tasks WHERE project_id = ? ORDER BY id"
        return list(self.sql.exec(query, project_id))

    async def complete(self, task_id: int) -> dict[str, Any] | None:
        rows = list(self.sql.exec("UPDATE tasks SET done = 1 WHERE id = ? RETURNING *", task_id))
        return rows[0] if rows else None

    async def delete_project(self, project_id: int) -> bool:
        """Delete the project and (by the foreign key's cascade) its tasks."""
        return self.sql.exec("DELETE FROM projects WHERE id = ?", project_id).rows_written > 0

    def _has_project(self, project_id: int) -> bool:
        return bool(list(self.sql.exec("SELECT 1 FROM projects WHERE id = ?", project_id)))
