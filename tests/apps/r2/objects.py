"""An object that reaches a bucket through its own env, as app code in hosts does."""

from typing import Any

from raydo import DurableObject


class Archiver(DurableObject):
    async def archive(self, key: str, text: str) -> str:
        stored = await self.env.FILES.put(key, text, custom_metadata={"by": "archiver"})
        return str(stored.etag)

    async def recall(self, key: str) -> Any:
        found = await self.env.FILES.get(key)
        return None if found is None else await found.text()
