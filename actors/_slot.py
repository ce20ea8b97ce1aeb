"""One object inside its host: storage, sockets, instance, mailbox and the chains it runs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from raydo.storage import ObjectStorage

from ._durability import WalSync
from ._ids import ObjectId
from ._object import DurableObject, ObjectContext
from ._turn import Turn
from .types import Event
from .websockets import ObjectSockets


class SlotState(Enum):
    """An object's life in its host."""

    INACTIVE = "inactive"  # known, no instance (never built, reset, or between events)
    ACTIVE = "active"  # an instance exists
    EVICTED = "evicted"  # instance and storage closed; the slot is gone from the host

    def check(self, to: SlotState) -> SlotState:
        if self is SlotState.EVICTED:
            raise RuntimeError(f"an evicted object cannot become {to.value}")
        return to


class ObjectSlot:
    """One object inside a host: its storage, instance, mailbox and call chains in progress."""

    __slots__ = (
        "committing_alarm",
        "ctx",
        "draining",
        "durable",
        "evict_requested",
        "instance",
        "last_used",
        "name_recorded",
        "object_id",
        "queue",
        "sockets",
        "state",
        "storage",
        "turns",
        "wal_sync",
    )

    def __init__(self, object_id: ObjectId, storage: ObjectStorage, sockets: ObjectSockets) -> None:
        self.object_id = object_id
        self.storage = storage
        self.sockets = sockets
        self.ctx = ObjectContext(object_id, storage, sockets)
        self.instance: DurableObject | None = None
        self.state = SlotState.INACTIVE
        self.queue: deque[tuple[Event, asyncio.Future[Any]]] = deque()
        self.draining = False
        self.turns: list[Turn] = []
        self.name_recorded = False  # running now: one, plus calls let back in
        # Group commit (durability "full"): the object's WAL syncs, and the future of the
        # latest commit's durability, which its output waits for.
        self.wal_sync: WalSync | None = None
        self.durable: asyncio.Future[None] | None = None
        self.last_used = time.monotonic()
        self.evict_requested = False
        self.committing_alarm: int | None = None

    @property
    def idle(self) -> bool:
        return not self.queue and not self.turns and not self.ctx.busy_in_background

    def waiting_on(self, chain: str) -> bool:
        """True when a turn of ``chain`` is blocked in a call out: a call of the same chain
        coming back is part of it and may run now."""
        return any(turn.chain == chain and turn.calls_out > 0 for turn in self.turns)

    def reset(self) -> None:
        """Drop uncommitted writes and the instance; the next event constructs it again."""
        self.sockets.discard()
        self.storage.rollback()
        self.instance = None
        self.state = self.state.check(SlotState.INACTIVE)

    def evict(self, closer: Callable[[sqlite3.Connection], object]) -> None:
        self.instance = None
        self.storage.close(closer)
        self.state = self.state.check(SlotState.EVICTED)
