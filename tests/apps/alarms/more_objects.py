"""More objects for the lifecycle tests; bound only by tests that add them to a copied raydo.toml.

Their switches live on disk under the app's storage root (not on the class), so a test can flip
them for hosts in this process and for hosts in Ray actors alike.
"""

import asyncio
import time
from pathlib import Path
from typing import Any

from raydo import DurableObject

BROKEN_MARKER = "fragile-constructor-broken"


def storage_root(ctx: Any) -> Path:
    """``<storage>`` from an object's file ``<storage>/<BINDING>/<id[:2]>/<id>.sqlite``."""
    return Path(ctx.storage._core.path).parents[2]  # white-box: its file says where


class Fragile(DurableObject):
    """Its constructor raises while ``<storage>/fragile-constructor-broken`` exists, after writing
    to storage and to memory (state that must not outlive the failed construction)."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.memory = 0
        if (storage_root(ctx) / BROKEN_MARKER).exists():
            ctx.storage.put("half-built", True)
            self.memory = 100
            raise RuntimeError("the constructor is broken on purpose")

    async def remember(self) -> int:
        self.memory += 1
        return self.memory

    async def put(self, key: str, value: Any) -> None:
        self.ctx.storage.put(key, value)

    async def value(self, key: str) -> Any:
        return self.ctx.storage.get(key)


class Tricky(DurableObject):
    """An alarm handler that does what ``trick`` says, recording every attempt first.

    * ``"set-then-delete"``: sets a new alarm, then deletes it (so nothing runs again);
    * ``"abort-once"``: ``ctx.abort()`` (alarm retried) on the first attempt, then succeeds.
    """

    async def arm(self, trick: str, ms: float) -> int | None:
        self.ctx.storage.put("trick", trick)
        self.ctx.storage.set_alarm(time.time() * 1000 + ms)
        return self.ctx.storage.get_alarm()

    async def get_alarm(self) -> int | None:
        return self.ctx.storage.get_alarm()

    async def arm_then_fail(self, ms: float) -> None:
        """Set an alarm and commit it explicitly, then raise: the alarm stays stored."""
        self.ctx.storage.set_alarm(time.time() * 1000 + ms)
        self.ctx.storage.commit()
        raise RuntimeError("failed after committing an alarm")

    async def attempts(self) -> list[dict[str, Any]]:
        attempts: list[dict[str, Any]] = self.ctx.storage.get("attempts", [])
        return attempts

    async def alarm(self, info: Any) -> None:
        attempts = self.ctx.storage.get("attempts", [])
        attempts.append({"retry_count": info.retry_count, "at": time.time() * 1000})
        self.ctx.storage.put("attempts", attempts)
        self.ctx.storage.commit()
        trick = self.ctx.storage.get("trick")
        if trick == "set-then-delete":
            self.ctx.storage.set_alarm(time.time() * 1000 + 50)
            self.ctx.storage.delete_alarm()
        elif trick == "abort-once" and info.retry_count == 0:
            self.ctx.abort("the first attempt aborts")


class Sleepy(DurableObject):
    """An alarm that takes too long on its first attempt (scenario 42)."""

    async def arm(self, ms: float) -> None:
        self.ctx.storage.set_alarm(time.time() * 1000 + ms)

    async def alarm(self, info: Any) -> None:
        attempts = self.ctx.storage.get("attempts", [])
        attempts.append(info.retry_count)
        self.ctx.storage.put("attempts", attempts)
        self.ctx.storage.commit()
        if info.retry_count == 0:
            await asyncio.sleep(60)  # far past the test's alarm_seconds

    async def attempts(self) -> list[int]:
        attempts: list[int] = self.ctx.storage.get("attempts", [])
        return attempts
