"""Objects for the tests of what user code can reach (the storage faces) and of teardown."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from raydo import DurableObject
from raydo.actors import PlatformObject


class Prober(DurableObject):
    """Reports the public names of its faces, and tries the old back doors from inside."""

    async def public_names(self) -> dict[str, list[str]]:
        def public(value: Any) -> list[str]:
            return sorted(name for name in dir(value) if not name.startswith("_"))

        return {
            "storage": public(self.ctx.storage),
            "sql": public(self.ctx.storage.sql),
            "ctx": public(self.ctx),
        }

    async def try_back_doors(self) -> dict[str, str]:
        """Every old plumbing name, called as the old code allowed; what each attempt gave."""
        self.ctx.storage.put("kept", 1)
        storage: Any = self.ctx.storage
        ctx: Any = self.ctx
        attempts: dict[str, Any] = {
            "internal": lambda: storage.internal("DELETE FROM _raydo_kv"),
            "begin": lambda: storage.begin(),
            "ensure_table": lambda: storage.ensure_table("_raydo_x", "CREATE TABLE _raydo_x (a)"),
            "table_exists": lambda: storage.table_exists("_raydo_kv"),
            "set_meta": lambda: storage.set_meta("name", "forged"),
            "get_meta": lambda: storage.get_meta("name"),
            "run_user_sql": lambda: storage.run_user_sql(["DELETE FROM _raydo_kv"], ()),
            "before_commit": lambda: setattr(storage, "before_commit", None),
            "after_commit": lambda: setattr(storage, "after_commit", None),
            "sync_later": lambda: setattr(storage, "sync_later", False),
            "in_turn": lambda: setattr(storage, "in_turn", 5),
            "alarm_touched": lambda: setattr(storage, "alarm_touched", True),
            "alarm_running": lambda: setattr(storage, "alarm_running", True),
            "rollback": lambda: storage.rollback(),
            "close": lambda: storage.close(),
            "internal_tag": lambda: storage.internal_tag,
            "sockets": lambda: ctx.sockets.forget("any"),
            "reset_requested": lambda: ctx.reset_requested,
        }
        outcome: dict[str, str] = {}
        for name, attempt in attempts.items():
            try:
                attempt()
            except AttributeError:
                outcome[name] = "refused"
            else:
                outcome[name] = "reached"
        return outcome

    async def kept(self) -> Any:
        return self.ctx.storage.get("kept")


class Lingerer(DurableObject):
    """A turn that waits until it is cancelled, then writes down what its storage could do."""

    started: ClassVar[asyncio.Event | None] = None
    unwound: ClassVar[list[Any]] = []

    async def linger(self) -> None:
        type(self).unwound = []
        started = type(self).started
        assert started is not None
        self.ctx.storage.put("during", True)
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            # The host is closing: the storage is still open for the turn's own unwinding.
            type(self).unwound.append(self.ctx.storage.get("during"))

    async def quick(self) -> str:
        return "answered"


class Pretender(PlatformObject):
    """A platform object an app binds as its own: its host must refuse it."""
