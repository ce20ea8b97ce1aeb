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
host that died (or a settlement that failed): the next turn releases it. While a batch is in
flight the object keeps an alarm a few seconds ahead, so a restarted host wakes it and finds
such leases at once. Releasing a batch whose host died, in order:

1. The decisions its handler made before the death are kept: each was journaled the moment
   it was made (``_decisions``). Acknowledged messages are deleted, retried ones wait their
   delay; none of them is delivered again as if undecided.
2. The undecided ones are delivered again, and one of them may be what killed the host. In a
   batch of several, none is charged the attempt (``refunds``), and each is marked
   ``isolate``: it goes alone in a batch of its own from then on. A message delivered alone
   whose host dies is charged, so a message that kills its host every time reaches the
   dead-letter queue after ``max_retries`` deliveries of its own, and its batch-mates never
   do without having been handled.

A message's ``attempts`` (what the handler sees) counts every delivery; what counts against
``max_retries`` is ``attempts - refunds``.
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
from ._decisions import Journal, journal_leases, journal_path, read_journal

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
    lease TEXT,
    refunds INTEGER NOT NULL DEFAULT 0,
    isolate INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_messages_ready ON queue_messages (lease, visible_ms, seq);
"""
# Columns added since the table's first shape: a file made before gets them on first use.
_ADDED_COLUMNS = (
    "refunds INTEGER NOT NULL DEFAULT 0",
    "isolate INTEGER NOT NULL DEFAULT 0",
)
_ISOLATED_INDEX = (
    "CREATE INDEX IF NOT EXISTS queue_messages_isolated ON queue_messages (visible_ms, seq)"
    " WHERE isolate = 1 AND lease IS NULL"
)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class _Leased:
    id: str
    body: bytes
    enqueued_ms: int
    attempts: int
    """Deliveries, this one included (what the handler sees)."""
    charged: int
    """Deliveries that count against ``max_retries`` (``attempts`` less refunds)."""


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
            # Handled without killing its host: it need not go alone any more.
            sql.exec(
                "UPDATE queue_messages SET lease = NULL, visible_ms = ?, isolate = 0"
                " WHERE id = ? AND lease = ?",
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
            sql = self.ctx.storage.sql
            sql.exec(_SCHEMA)
            known = {row[1] for row in sql.exec("PRAGMA table_info(queue_messages)").raw()}
            for column in _ADDED_COLUMNS:
                if column.split()[0] not in known:
                    sql.exec(f"ALTER TABLE queue_messages ADD COLUMN {column}")
            sql.exec(_ISOLATED_INDEX)
            self._forget_stale_journals()
            self._schema_ready = True

    def _forget_stale_journals(self) -> None:
        """Remove journals of leases the file no longer holds (their settlement committed,
        and the process died before it removed the journal)."""
        held = {
            row[0]
            for row in self.ctx.storage.sql.exec(
                "SELECT DISTINCT lease FROM queue_messages WHERE lease IS NOT NULL"
            ).raw()
        }
        for lease, path in journal_leases(self.core.path).items():
            if lease not in held and lease not in _WORKING:
                path.unlink(missing_ok=True)

    def _count(self, counter: str, n: int) -> None:
        if n:
            storage = self.ctx.storage
            storage.put(counter, int(storage.get(counter, 0)) + n)

    def _pump(self) -> None:
        """Release abandoned leases, start a batch if one is due, and set the alarm."""
        sql, now = self.ctx.storage.sql, now_ms()
        consumer = self._broker.consumer(self.queue)
        held = sql.exec("SELECT DISTINCT lease FROM queue_messages WHERE lease IS NOT NULL")
        for (lease,) in list(held.raw()):
            if lease not in _WORKING:
                self._release_abandoned(lease, consumer, now)
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

    def _release_abandoned(self, lease: str, consumer: ConsumerSpec | None, now: int) -> None:
        """Release a batch whose host died (or whose settlement failed): keep the decisions
        its journal holds, and isolate the undecided (see the module's text)."""
        sql = self.ctx.storage.sql
        path = journal_path(self.core.path, lease)
        journaled = read_journal(path)
        rows = list(
            sql.exec(
                "SELECT id, attempts, refunds FROM queue_messages WHERE lease = ?", lease
            ).raw()
        )
        alone = len(rows) == 1
        acked = retried = undecided = 0
        for message_id, attempts, refunds in rows:
            decision = journaled.decision(message_id)
            if decision is not None and decision[0] == "ack":
                sql.exec("DELETE FROM queue_messages WHERE id = ?", message_id)
                acked += 1
            elif decision is not None:  # retried: after its delay, like any retry
                seconds = decision[1]
                if seconds is None:
                    seconds = 0.0 if consumer is None else consumer.backoff(attempts - refunds)
                sql.exec(
                    "UPDATE queue_messages SET lease = NULL, visible_ms = ?, isolate = 0"
                    " WHERE id = ?",
                    now + int(seconds * 1000),
                    message_id,
                )
                retried += 1
            elif alone:  # it was delivered alone and its host died: it is charged
                seconds = 0.0 if consumer is None else consumer.backoff(attempts - refunds)
                sql.exec(
                    "UPDATE queue_messages SET lease = NULL, visible_ms = ?, isolate = 1"
                    " WHERE id = ?",
                    now + int(seconds * 1000),
                    message_id,
                )
                undecided += 1
            else:  # any of the undecided may have killed the host: none is charged, each goes alone
                sql.exec(
                    "UPDATE queue_messages SET lease = NULL, refunds = refunds + 1, isolate = 1"
                    " WHERE id = ?",
                    message_id,
                )
                undecided += 1
        self._count("acked", acked)
        self._count("retried", retried)
        log.warning(
            "queue %s: released a batch whose delivery did not settle (lease %s): %d acked and"
            " %d retried before that kept, %d undecided delivered again%s",
            self.queue,
            lease,
            acked,
            retried,
            undecided,
            "" if alone else ", each alone",
        )
        path.unlink(missing_ok=True)

    def _lease_due(self, consumer: ConsumerSpec, now: int) -> bool:
        """Lease a batch and start its handler if one is due; whether one started. A message
        isolated after a crash goes first, alone."""
        sql = self.ctx.storage.sql
        columns = "SELECT id, body, enqueued_ms, visible_ms, attempts, refunds FROM queue_messages"
        rows = list(
            sql.exec(
                f"{columns} WHERE isolate = 1 AND lease IS NULL AND visible_ms <= ?"
                " ORDER BY visible_ms, seq LIMIT 1",
                now,
            ).raw()
        )
        if not rows:
            rows = list(
                sql.exec(
                    f"{columns} WHERE lease IS NULL AND visible_ms <= ? AND isolate = 0"
                    " ORDER BY visible_ms, seq LIMIT ?",
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
        for message_id, body, enqueued_ms, _, attempts, refunds in rows:
            sql.exec(
                "UPDATE queue_messages SET lease = ?, attempts = attempts + 1 WHERE id = ?",
                lease,
                message_id,
            )
            leased.append(
                _Leased(message_id, body, enqueued_ms, attempts + 1, attempts + 1 - refunds)
            )
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
        journal = Journal(journal_path(self.core.path, lease))
        try:
            dead = [m for m in leased if m.charged > consumer.max_retries + 1]
            live = [m for m in leased if m.charged <= consumer.max_retries + 1]
            acks: list[str] = []
            retries: list[tuple[_Leased, float | None]] = []
            if live:
                acks, retries = await self._handle(consumer, live, journal)
            dead += [m for m, _ in retries if m.charged > consumer.max_retries]
            retries = [(m, d) for m, d in retries if m.charged <= consumer.max_retries]
            moved = await self._dead_letter(consumer, dead)
            kept = [m for m in dead if m.id not in moved]  # the DLQ refused them: try again
            again = [[m.id, _delay_ms(consumer, m, d)] for m, d in retries]
            again += [[m.id, _delay_ms(consumer, m, None)] for m in kept]
            if await self._settle(lease, acks, again, sorted(moved)):
                journal.remove()  # settled: the file no longer holds the lease
        finally:
            journal.close()
            _WORKING.discard(lease)

    async def _handle(
        self, consumer: ConsumerSpec, leased: list[_Leased], journal: Journal
    ) -> tuple[list[str], list[tuple[_Leased, float | None]]]:
        by_id = {m.id: m for m in leased}
        failed = False
        batch = MessageBatch(self.queue, [], _record=journal.record)
        try:
            batch.messages = [
                Message(
                    m.id,
                    codec.decode(m.body),
                    datetime.fromtimestamp(m.enqueued_ms / 1000, UTC),
                    m.attempts,
                    _record=journal.record,
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
    ) -> bool:
        """Settle the batch in a turn of this object; whether that committed."""
        for attempt in range(SETTLE_TRIES):
            try:
                await self._broker.stub(self.queue).settle(lease, acks, retries, dead)
                return True
            except Overloaded:  # the mailbox is full of sends: the lease waits meanwhile
                await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
            except Exception:  # noqa: BLE001 - the host is going; the lease will be released
                break
        # The lease stays in the file; the next turn sees nobody works on it and releases it,
        # keeping the decisions of the journal.
        log.error(
            "queue %s: could not settle a batch; its undecided messages will be delivered again",
            self.queue,
        )
        return False


def _delay_ms(consumer: ConsumerSpec, message: _Leased, delay: float | None) -> int:
    seconds = consumer.backoff(message.charged) if delay is None else delay
    return int(seconds * 1000)
