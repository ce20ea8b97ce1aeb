"""Notes written with the platform's Python face: its point-in-time calls (a test adds the
binding)."""

from typing import Any

from workers import DurableObject


class PlatformNotes(DurableObject):
    async def write(self, key: str, value: Any) -> None:
        await self.ctx.storage.put(key, value)

    async def read(self, key: str) -> Any:
        return await self.ctx.storage.get(key)

    async def bookmark(self) -> str:
        return str(await self.ctx.storage.getCurrentBookmark())

    async def bookmark_for(self, timestamp: Any) -> str:
        return str(await self.ctx.storage.getBookmarkForTime(timestamp))

    async def restore_to(self, bookmark: str) -> str:
        undo = str(await self.ctx.storage.onNextSessionRestoreBookmark(bookmark))
        self.ctx.abort()
        return undo  # never reached: abort() resets the object
