"""One queue: its messages in the object's SQLite file, delivered in batches to its consumer.

Delivery, in order, so that nothing is lost when a host or gateway dies mid-batch:

1. **Lease** (in a turn: after ``enqueue``, after ``settle``, or in ``alarm``). When the
   consumer has no batch in flight and either ``max_batch_size`` messages are visible or the
   oldest visible one has waited ``max_batch_timeout``, up to ``max_batch_size`` of them get
   a lease id and one more attempt, committed with the turn.
2. **Handle** (outside any turn, through ``ctx.wait_until``): the consumer's handler runs in
   this host's process with this host's ``env``, so producers and settlements keep flowing.
3. **Dead-letter**: messages past ``max_retries`` go to the dead-letter queue's object
   first (keeping their id, so a repeat is ignored there), and only then are they removed
   here; without a dead-letter queue they are dropped and logged.
4. **Settle** (a later turn, an RPC to this object): acknowledged messages are deleted,
   retried ones become visible again after their delay (explicit, or the consumer's backoff),
   dead-lettered ones are deleted.

Leases live in the file; which leases are being worked on lives in this process's memory
(:data:`_WORKING`). A lease in the file that this process is not working on belongs to a
host that died (or a settlement that failed): the next turn releases it, and its messages
are delivered again (at least once). While a batch is in flight the object keeps an alarm a
few seconds ahead, so a restarted host wakes it and finds such leases at once. A delivery
that never settles counts as an attempt, so a message that kills its host each time still
reaches the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from raydo.actors import ObjectContext, Overloaded, PlatformObject, public_env
from raydo.storage import StorageCore, codec

from ._batch import MAX_DELAY_SECONDS, Message, MessageBatch
from ._broker import BROKER, ConsumerSpec, QueueBroker

log = logging.getLogger("raydo.queues")

WATCH_MS = 2_000
"""While a batch is in flight, the alarm fires at most this long after a host restart."""
HANDLER_SECONDS = 900
"""Wall time of one handler run (as a Worker's queue handler); past it the batch is retried."""
CONFIG_RETRY_MS = 5_000
"""How soon to try again when the handler cannot be imported (messages are left untouched)."""
SETTLE_TRIES = 10
"""Tries of a settlement refused as overloaded (about 25 s in all) before the batch is left
for redelivery."""
_MESSAGE_ID = re.compile(r"[0-9a-f]{32}")

# Leases being worked on in this process. A host process that dies takes this with it, which
# is exactly how its leases are recognised as abandoned.
_WORKING: set[str] = set()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    visible_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease TEXT
);
CREATE INDEX IF NOT EXISTS queue_messages_ready ON queue_messages (lease, visible_ms, seq);
"""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class _Leased:
    id: str
    body: bytes
    enqueued_ms: int
    attempts: int


class QueueObject(PlatformObject):
    """The object of one queue (internal binding ``_QUEUES``, named by the queue)."""

    def __init__(self, ctx: ObjectContext, env: Any, core: StorageCore) -> None:
        super().__init__(ctx, env, core)
        self._broker: QueueBroker = getattr(env, BROKER)
        self._schema_ready = False

    # ---- events -------------------------------------------------------------------------

    async def enqueue(self, items: list[Any]) -> int:
        """Store messages given as ``[id, body, delay_ms, enqueued_ms or None]`` (a repeated
        id is ignored); how many were new."""
        limits = self.core.limits
        if not isinstance(items, list):
            raise TypeError("enqueue takes a list of messages")
        checked = []
        for item in items:
            if not (isinstance(item, list) and len(item) == 4):
                raise TypeError("a message is [id, body, delay_ms, enqueued_ms]")
            message_id, body, delay_ms, enqueued_ms = item
            if not (isinstance(message_id, str) and _MESSAGE_ID.fullmatch(message_id)):
                raise ValueError("a message id is 32 lowercase hex characters")
            if not isinstance(body, bytes):
                raise TypeError("a message body arrives encoded, as bytes")
            limits.check("queue_message_bytes", len(body), "a queue message body")
            if not (type(delay_ms) is int and 0 <= delay_ms <= MAX_DELAY_SECONDS * 1000):
                raise ValueError(f"a delay is from 0 to {MAX_DELAY_SECONDS * 1000} ms")
            if enqueued_ms is not None and type(enqueued_ms) is not int:
                raise TypeError("enqueued_ms is epoch milliseconds")
            checked.append((message_id, body, delay_ms, enqueued_ms))
        self._prepare()
        now, added = now_ms(), 0
        sql = self.ctx.storage.sql
        for message_id, body, delay_ms, enqueued_ms in checked:
            cursor = sql.exec(
                "INSERT OR IGNORE INTO queue_messages (id, body, enqueued_ms, visible_ms)"
                " VALUES (?, ?, ?, ?)",
                message_id,
                body,
                now if enqueued_ms is None else enqueued_ms,
                now + delay_ms,
            )
            added += cursor.rows_written
        self._pump()
        return added

    async def settle(
        self, lease: str, acks: list[str], retries: list[list[Any]], dead: list[str]
    ) -> None:
        """Record what became of a leased batch: acknowledged ids are deleted, retried
        ``[id, delay_ms]`` become visible again after the delay, dead-lettered ids are
        deleted. Only messages still under ``lease`` are retried; acks apply regardless."""
        self._prepare()
        sql, now = self.ctx.storage.sql, now_ms()
        for message_id in [*acks, *dead]:
            sql.exec("DELETE FROM queue_messages WHERE id = ?", str(message_id))
        for message_id, delay_ms in retries:
            sql.exec(
                "UPDATE queue_messages SET lease = NULL, visible_ms = ? WHERE id = ? AND lease = ?",
                now + int(delay_ms),
                str(message_id),
                lease,
            )
        # Anything of the lease not mentioned (it cannot happen, but must not stay stuck).
        sql.exec("UPDATE queue_messages SET lease = NULL WHERE lease = ?", lease)
        consumer = self._broker.consumer(self.queue)
        dead_letters = consumer is not None and consumer.dead_letter_queue is not None
        self._count("acked", len(acks))
        self._count("retried", len(retries))
        self._count("dead_lettered" if dead_letters else "dropped", len(dead))
        _WORKING.discard(lease)
        self._pump()

    async def alarm(self, info: Any) -> None:
        """Deliver what is due, release abandoned leases, and set the next alarm."""
        self._prepare()
        self._pump()

    # ---- in a turn: leasing and scheduling ---------------------------------------------

    @property
    def queue(self) -> str:
        name = self.ctx.id.name
        if name is None:  # every stub is made from the queue's name; this never happens
            raise RuntimeError("a queue object must be reached by the queue's name")
        return name

    def _prepare(self) -> None:
        if not self._schema_ready:
            self.ctx.storage.sql.exec(_SCHEMA)
            self._schema_ready = True

    def _count(self, counter: str, n: int) -> None:
        if n:
            storage = self.ctx.storage
            storage.put(counter, int(storage.get(counter, 0)) + n)

    def _pump(self) -> None:
        """Release abandoned leases, start a batch if one is due, and set the alarm."""
        sql, now = self.ctx.storage.sql, now_ms()
        for row in sql.exec(
            "SELECT DISTINCT lease FROM queue_messages WHERE lease IS NOT NULL"
        ).raw():
            if row[0] not in _WORKING:
                log.warning("queue %s: releasing an abandoned batch (lease %s)", self.queue, row[0])
                sql.exec("UPDATE queue_messages SET lease = NULL WHERE lease = ?", row[0])
        consumer = self._broker.consumer(self.queue)
        wake: int | None = None
        leased = sql.exec("SELECT 1 FROM queue_messages WHERE lease IS NOT NULL LIMIT 1")
        running = leased.rows_read > 0
        if consumer is not None and not running:
            try:
                self._broker.handler(consumer)
            except Exception:
                log.exception("queue %s: cannot import handler %s", self.queue, consumer.handler)
                wake = now + CONFIG_RETRY_MS
            else:
                running = self._lease_due(consumer, now)
                if not running:
                    wake = self._next_due(consumer, now)
        if running:
            wake = now + WATCH_MS if wake is None else min(wake, now + WATCH_MS)
        current = self.ctx.storage.get_alarm()
        # An alarm earlier than needed is kept (it only wakes the queue to look again):
        # moving it on every event would write the alarm index on every send.
        if wake is not None and (current is None or wake < current):
            self.ctx.storage.set_alarm(wake)

    def _lease_due(self, consumer: ConsumerSpec, now: int) -> bool:
        """Lease a batch and start its handler if one is due; whether one started."""
        sql = self.ctx.storage.sql
        rows = list(
            sql.exec(
                "SELECT id, body, enqueued_ms, visible_ms, attempts FROM queue_messages"
                " WHERE lease IS NULL AND visible_ms <= ? ORDER BY visible_ms, seq LIMIT ?",
                now,
                consumer.max_batch_size,
            ).raw()
        )
        if not rows:
            return False
        oldest_visible = rows[0][3]
        full = len(rows) >= consumer.max_batch_size
        if not full and oldest_visible + consumer.max_batch_timeout * 1000 > now:
            return False
        lease = secrets.token_hex(8)
        leased = []
        for message_id, body, enqueued_ms, _, attempts in rows:
            sql.exec(
                "UPDATE queue_messages SET lease = ?, attempts = attempts + 1 WHERE id = ?",
                lease,
                message_id,
            )
            leased.append(_Leased(message_id, body, enqueued_ms, attempts + 1))
        _WORKING.add(lease)
        self.ctx.wait_until(self._deliver(consumer, lease, leased))
        return True

    def _next_due(self, consumer: ConsumerSpec, now: int) -> int | None:
        """When a batch will be due if nothing else arrives: the oldest visible message's
        timeout, or the moment the next delayed one becomes visible."""
        sql = self.ctx.storage.sql
        pending = "SELECT min(visible_ms) AS t FROM queue_messages WHERE lease IS NULL AND "
        first = sql.exec(pending + "visible_ms <= ?", now).one()["t"]
        later = sql.exec(pending + "visible_ms > ?", now).one()["t"]
        times = [int(later)] if later is not None else []
        if first is not None:
            times.append(int(first) + int(consumer.max_batch_timeout * 1000))
        return min(times) if times else None

    # ---- outside any turn: the handler and what follows ---------------------------------

    async def _deliver(self, consumer: ConsumerSpec, lease: str, leased: list[_Leased]) -> None:
        try:
            dead = [m for m in leased if m.attempts > consumer.max_retries + 1]
            live = [m for m in leased if m.attempts <= consumer.max_retries + 1]
            acks: list[str] = []
            retries: list[tuple[_Leased, float | None]] = []
            if live:
                acks, retries = await self._handle(consumer, live)
            dead += [m for m, _ in retries if m.attempts > consumer.max_retries]
            retries = [(m, d) for m, d in retries if m.attempts <= consumer.max_retries]
            moved = await self._dead_letter(consumer, dead)
            kept = [m for m in dead if m.id not in moved]  # the DLQ refused them: try again
            again = [[m.id, _delay_ms(consumer, m, d)] for m, d in retries]
            again += [[m.id, _delay_ms(consumer, m, None)] for m in kept]
            await self._settle(lease, acks, again, sorted(moved))
        finally:
            _WORKING.discard(lease)

    async def _handle(
        self, consumer: ConsumerSpec, leased: list[_Leased]
    ) -> tuple[list[str], list[tuple[_Leased, float | None]]]:
        by_id = {m.id: m for m in leased}
        failed = False
        batch = MessageBatch(self.queue, [])
        try:
            batch.messages = [
                Message(
                    m.id,
                    codec.decode(m.body),
                    datetime.fromtimestamp(m.enqueued_ms / 1000, UTC),
                    m.attempts,
                )
                for m in leased
            ]
            result = self._broker.handler(consumer)(batch, public_env(self.env))
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, HANDLER_SECONDS)
        except Exception:
            failed = True
            log.warning("queue %s: the handler raised; batch retried", self.queue, exc_info=True)
        if not batch.messages:  # the bodies could not even be decoded
            return [], [(m, None) for m in leased]
        acks, retries = batch.outcome(failed)
        return acks, [(by_id[i], delay) for i, delay in retries]

    async def _dead_letter(self, consumer: ConsumerSpec, dead: list[_Leased]) -> set[str]:
        """Move ``dead`` to the dead-letter queue (or drop them); the ids that left."""
        if not dead:
            return set()
        target = consumer.dead_letter_queue
        if target is None:
            log.error(
                "queue %s: dropping %d message(s) after %d retries (no dead_letter_queue)",
                self.queue,
                len(dead),
                consumer.max_retries,
            )
            return {m.id for m in dead}
        items = [[m.id, m.body, 0, m.enqueued_ms] for m in dead]
        try:
            await self._broker.stub(target).enqueue(items)
        except Exception:
            log.exception("queue %s: dead-letter queue %s refused messages", self.queue, target)
            return set()
        return {m.id for m in dead}

    async def _settle(
        self, lease: str, acks: list[str], retries: list[list[Any]], dead: list[str]
    ) -> None:
        for attempt in range(SETTLE_TRIES):
            try:
                await self._broker.stub(self.queue).settle(lease, acks, retries, dead)
                return
            except Overloaded:  # the mailbox is full of sends: the lease waits meanwhile
                await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
            except Exception:  # noqa: BLE001 - the host is going; the lease will be released
                break
        # The lease stays in the file; the next turn sees nobody works on it and releases it.
        log.error("queue %s: could not settle a batch; it will be delivered again", self.queue)


def _delay_ms(consumer: ConsumerSpec, message: _Leased, delay: float | None) -> int:
    seconds = consumer.backoff(message.attempts) if delay is None else delay
    return int(seconds * 1000)
