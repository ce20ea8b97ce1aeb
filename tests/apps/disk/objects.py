"""An object that writes as much as it is told to."""

from raydo import DurableObject


class Notes(DurableObject):
    async def write(self, key: str, size: int) -> int:
        self.ctx.storage.put(key, b"n" * size)
        return size

    async def read(self, key: str) -> int:
        found = self.ctx.storage.get(key)
        return -1 if found is None else len(found)
