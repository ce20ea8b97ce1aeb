"""The output gate: what happens around each commit of an object, and when its output leaves.

The slot's storage core calls the gate's two hooks on every commit (:meth:`StorageCore.commit`
is the one entry point), in order:

1. :meth:`OutputGate.before_commit`, inside the transaction: the object's name is recorded in
   its file the first time (ids are one-way; inspection reads it), and an alarm the
   transaction set goes into the index first (written ahead, so a crash fires it early, never
   late).
2. COMMIT.
3. :meth:`OutputGate.after_commit`: the index and the timer learn the committed alarm, and the
   WebSocket pushes the event queued leave. Under group commit (``durability = "full"``) both
   wait for the WAL sync that makes this commit durable, and with replication in ``sync``
   mode for the round that puts it in the store (:mod:`raydo.storage.replication`); the
   commit returns the future of both: the event's reply and its calls out wait for it too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ._alarm_runs import HostAlarms
from ._payloads import Push
from ._turn import current_turn

if TYPE_CHECKING:
    from ._slot import ObjectSlot

log = logging.getLogger("raydo.host")


class OutputGate:
    """The commit hooks of every object of one host."""

    __slots__ = ("_alarms",)

    def __init__(self, alarms: HostAlarms) -> None:
        self._alarms = alarms

    def before_commit(self, slot: ObjectSlot) -> None:
        core = slot.core
        name = slot.object_id.name
        if name is not None and not slot.name_recorded:
            if core.get_meta("name") != name:
                core.set_meta("name", name)
            slot.name_recorded = True
        if core.alarm_touched:
            due = core.stored_alarm()
            slot.committing_alarm = due
            if due is not None:
                self._alarms.ahead(slot.object_id.hex, slot.object_id.name, due)

    def after_commit(self, slot: ObjectSlot, wrote: bool) -> asyncio.Future[None] | None:
        """What the commit lets out, now or once durable; the future of that, or None."""
        core = slot.core
        turn = current_turn.get()
        if (
            turn is not None and turn.storage is core
        ):  # the committing event (gates: one of several)
            turn.left = True
        elif slot.turns:
            slot.turns[-1].left = True
        alarm: tuple[int | None] | None = None
        if core.alarm_touched:
            core.alarm_touched = False
            alarm = (slot.committing_alarm,)
        durable = None if slot.wal_sync is None else slot.wal_sync.committed(wrote)
        if slot.replica is not None:
            durable = _both(durable, slot.replica.shipper.committed(wrote))
        pushes = slot.sockets.take_pushes()
        if durable is None:
            self._release(slot, alarm, pushes)
            return None

        def release(done: asyncio.Future[None]) -> None:
            if done.cancelled() or done.exception() is not None:
                log.error(
                    "the writes of %s did not become durable; its output is dropped", slot.object_id
                )
                return
            self._release(slot, alarm, pushes)

        durable.add_done_callback(release)
        return durable

    def _release(
        self, slot: ObjectSlot, alarm: tuple[int | None] | None, pushes: list[tuple[str, Push]]
    ) -> None:
        if alarm is not None:
            self._alarms.settle(slot.object_id.hex, slot.object_id.name, alarm[0])
        slot.sockets.release(pushes)


def _both(
    first: asyncio.Future[None] | None, second: asyncio.Future[None] | None
) -> asyncio.Future[None] | None:
    """A future done when both are (failing with the first failure), or the one there is."""
    if first is None:
        return second
    if second is None:
        return first
    both: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(done: asyncio.Future[None]) -> None:
        if both.done():
            return
        if done.cancelled():
            both.cancel()
        elif done.exception() is not None:
            both.set_exception(done.exception())  # type: ignore[arg-type]
        elif first.done() and second.done():
            both.set_result(None)

    first.add_done_callback(settle)
    second.add_done_callback(settle)
    return both
