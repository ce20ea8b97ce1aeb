"""Notes: keys and values in one object, and what the replication tests read back."""

from __future__ import annotations

import hashlib
from typing import Any

from raydo import DurableObject


class Notes(DurableObject):
    async def write(self, key: str, value: Any) -> int:
        """Store ``value`` at ``key``; how many writes this object has taken."""
        count: int = self.ctx.storage.get("_count", 0) + 1
        self.ctx.storage.put_many({key: value, "_count": count})
        return count

    async def read(self, key: str) -> Any:
        return self.ctx.storage.get(key)

    async def fill(self, count: int, size: int, start: int = 0, tag: int = 0) -> int:
        """``count`` values of ``size`` bytes at keys ``f<start>`` ... (``tag`` changes the
        bytes); how many."""
        for i in range(start, start + count):
            self.ctx.storage.put(f"f{i:08d}", bytes([(i + tag) % 251]) * size)
        return count

    async def everything(self) -> dict[str, Any]:
        return dict(self.ctx.storage.list())

    async def digest(self) -> str:
        """A sha256 over every key and value, in key order (a dump's hash)."""
        digest = hashlib.sha256()
        for key, value in self.ctx.storage.list().items():
            digest.update(repr((key, value)).encode())
        return digest.hexdigest()

    async def bookmark(self) -> str:
        return await self.ctx.storage.get_current_bookmark()

    async def bookmark_for(self, when: Any) -> str:
        return await self.ctx.storage.get_bookmark_for_time(when)

    async def restore_to(self, bookmark: Any, *, restart: bool = False) -> str:
        """Restore to ``bookmark`` at the next session (now with ``restart``, whose caller
        then gets the reset); the bookmark that undoes it."""
        undo = await self.ctx.storage.on_next_session_restore_bookmark(bookmark)
        if restart:
            self.ctx.abort("restoring a bookmark")
        return undo
