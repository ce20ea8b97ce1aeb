from typing import Any

from raydo import DurableObject


class Writer(DurableObject):
    """Reaches a key-value namespace from inside an object (the host's env)."""

    async def put(self, key: str, value: str) -> None:
        await self.env.CONFIG.put(key, value)

    async def get(self, key: str) -> Any:
        return await self.env.CONFIG.get(key)
