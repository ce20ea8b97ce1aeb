from typing import Any

from raydo import DurableObject


class Writer(DurableObject):
    """Reaches the database from inside an object: env.DB works in hosts too."""

    async def add(self, name: str) -> Any:
        result = await self.env.DB.prepare("INSERT INTO users (name) VALUES (?)").bind(name).run()
        return result.meta.last_row_id
