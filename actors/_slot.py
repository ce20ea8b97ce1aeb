"""One object inside its host: its life, storage, sockets, instance, mailbox and running turns."""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from raydo.storage import ObjectStorage, StorageCore
from raydo.storage.replication import ObjectReplica

from ._durability import WalSync
from ._ids import ObjectId
from ._input_gate import InputGate
from ._mailbox import Mailbox
from ._object import DurableObject, ObjectContext
from ._turn import Turn
from .websockets import ObjectSockets

log = logging.getLogger("raydo.host")


class CommitHooks(Protocol):
    """What a slot's storage core calls around each commit (the host's
    :class:`~raydo.actors._gate.OutputGate`); said here so the slot need not import the gate."""

    def before_commit(self, slot: ObjectSlot) -> None: ...

    def after_commit(self, slot: ObjectSlot, wrote: bool) -> asyncio.Future[None] | None: ...


class ObjectLife(Enum):
    """An object's life in its host; :meth:`to` is the only way it changes, and refuses a step
    the table does not allow.

    Whether a mailbox is being worked through is not part of it: a host works through the
    mailbox of an inactive object too (its first event activates it).
    """

    INACTIVE = "inactive"  # known, no instance: never built, or reset
    ACTIVATING = "activating"  # its constructor is running
    ACTIVE = "active"  # an instance handles its events
    EVICTED = "evicted"  # instance dropped and storage closed; the slot left its host

    def to(self, target: ObjectLife) -> ObjectLife:
        """``target``, if this life may step to it; else :class:`IllegalTransition`."""
        if target not in _STEPS[self]:
            raise IllegalTransition(f"an object cannot go from {self.value} to {target.value}")
        return target


class IllegalTransition(RuntimeError):
    """A step of an object's life that its table does not allow."""


_STEPS: dict[ObjectLife, frozenset[ObjectLife]] = {
    ObjectLife.INACTIVE: frozenset({ObjectLife.ACTIVATING, ObjectLife.EVICTED}),
    ObjectLife.ACTIVATING: frozenset({ObjectLife.ACTIVE, ObjectLife.INACTIVE}),
    ObjectLife.ACTIVE: frozenset({ObjectLife.INACTIVE, ObjectLife.EVICTED}),
    ObjectLife.EVICTED: frozenset(),
}


class ObjectSlot:
    """One object inside a host.

    Its storage core is made here, with the host's output gate as its commit hooks, so every
    commit of the object (the end of an event, a call out, ``ctx.storage.commit()``) goes
    through the gate.
    """

    __slots__ = (
        "committing_alarm",
        "core",
        "ctx",
        "drain",
        "evict_requested",
        "gate",
        "instance",
        "last_used",
        "life",
        "name_recorded",
        "object_id",
        "queue",
        "replica",
        "sockets",
        "started",
        "turns",
        "wal_sync",
    )

    def __init__(
        self,
        object_id: ObjectId,
        core: Callable[..., StorageCore],
        gate: CommitHooks,
        sockets: Callable[[StorageCore, str], ObjectSockets],
        queue: Mailbox,
        wal_sync: WalSync | None = None,
        replica: ObjectReplica | None = None,
    ) -> None:
        self.object_id = object_id
        self.life = ObjectLife.INACTIVE
        self.core = core(
            before_commit=functools.partial(gate.before_commit, self),
            after_commit=functools.partial(gate.after_commit, self),
        )
        self.sockets = sockets(self.core, object_id.hex)
        self.gate = InputGate()
        """Its critical sections; in gates mode, what holds its events back."""
        self.ctx = ObjectContext(object_id, ObjectStorage(self.core), self.sockets, self.gate)
        self.core.on_unconfirmed_lost = self._unconfirmed_lost
        self.instance: DurableObject | None = None
        self.queue = queue
        """The events waiting for their turn (bounded in number and in waiting time)."""
        self.drain: asyncio.Task[None] | None = None
        """The task working through the mailbox, while one does (the host owns it)."""
        self.turns: list[Turn] = []  # running now: one, plus calls let back in
        self.started = 0  # gates mode: events started and not yet ended (running beside)
        self.name_recorded = False
        # Group commit (durability "full"): the syncs of the object's WAL.
        self.wal_sync = wal_sync
        # Replication: the object's log in the store (None when files stay local).
        self.replica = replica
        self.last_used = time.monotonic()
        self.evict_requested = False  # the testing hook's eviction, once the object is idle
        self.committing_alarm: int | None = None

    @property
    def idle(self) -> bool:
        return (
            not self.queue
            and not self.turns
            and not self.started
            and not self.ctx._busy_in_background
            and (self.replica is None or self.replica.idle)
        )

    def waiting_on(self, chain: str) -> bool:
        """True when a turn of ``chain`` is blocked in a call out: a call of the same chain
        coming back is part of it and may run now."""
        return any(turn.chain == chain and turn.calls_out > 0 for turn in self.turns)

    def activating(self) -> None:
        self.life = self.life.to(ObjectLife.ACTIVATING)

    def activated(self, instance: DurableObject | None) -> None:
        """The constructor returned ``instance``, or (None) raised."""
        self.instance = instance
        self.life = self.life.to(ObjectLife.INACTIVE if instance is None else ObjectLife.ACTIVE)

    def _unconfirmed_lost(self, failure: BaseException) -> None:
        """Writes made with ``allow_unconfirmed`` never became durable, and the object may
        have answered as if they had: it is reset before (or at the end of) its next event."""
        log.error(
            "the unconfirmed writes of %s did not become durable (%r): the object is reset",
            self.object_id,
            failure,
        )
        self.ctx._request_reset()

    def reset(self) -> None:
        """Drop uncommitted writes and the instance; the next event constructs it again."""
        self.sockets.discard()
        self.instance = None
        if self.life is ObjectLife.ACTIVE:
            self.life = self.life.to(ObjectLife.INACTIVE)
        self.core.rollback()

    def evict(self, closer: Callable[[sqlite3.Connection], object] | None = None) -> None:
        """Drop the instance and close the storage (``closer`` closes the file, see
        :meth:`StorageCore.close`); the slot is done."""
        self.life = self.life.to(ObjectLife.EVICTED)
        self.instance = None
        # A replicated file closes here and now: closing checkpoints its WAL, which must not
        # overlap a later activation's shipping round reading the same files.
        self.core.close(None if self.replica is not None else closer)
