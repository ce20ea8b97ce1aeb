"""Queues over the in-process harness: batches, acks and retries, dead letters, delays, limits.

The test app (``tests/apps/queues``) has a consumer whose messages say what it should do
with them, and which records every delivery in a ``Log`` object; timings are configured
small (no batching delay, 50 ms backoff) so nothing here waits long.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from raydo.actors import ObjectError, RemoteLimitExceeded
from raydo.bindings import Plan, queues
from raydo.bindings.queues import Message, MessageBatch
from raydo.bindings.queues import _object as queue_object
from raydo.gateway.cli import main as cli
from raydo.gateway.cli_queues import queue_counts
from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.runtime import AppLoadError
from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from raydo.storage import EncodeError, LimitExceeded

Batch = tuple[str, list[Any], float]


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.02)


async def batches(app: TestApp, queue: str | None = None) -> list[Batch]:
    found = await app.env.LOG.get_by_name("log").batches()
    return [tuple(b) for b in found if queue is None or b[0] == queue]


def deliveries(found: list[Batch]) -> list[tuple[Any, int]]:
    """Every delivered (body, attempts), in delivery order."""
    return [(body, attempts) for _, messages, _ in found for _, body, attempts in messages]


async def drained(app: TestApp, queue: str) -> bool:
    counts = queue_counts(app.config, queue)
    return counts.ready + counts.delayed + counts.in_flight == 0


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("queues")


async def test_a_full_batch_goes_at_once_in_send_order(app: TestApp) -> None:
    await app.env.BATCHED.send_batch([{"body": {"n": n}} for n in range(20)])
    await until(lambda: drained(app, "batched"), "20 messages consumed")
    found = await batches(app, "batched")
    assert [len(messages) for _, messages, _ in found] == [4] * 5
    assert [body["n"] for body, _ in deliveries(found)] == list(range(20))
    assert queue_counts(app.config, "batched").acked == 20


async def test_a_partial_batch_waits_for_the_timeout_then_goes(app: TestApp) -> None:
    sent = time.time()
    await app.env.BATCHED.send_batch([{"body": {"n": 1}}, {"body": {"n": 2}}])
    await until(lambda: drained(app, "batched"), "the partial batch consumed")
    found = await batches(app, "batched")
    assert [[m[1]["n"] for m in messages] for _, messages, _ in found] == [[1, 2]]
    # max_batch_timeout is 0.5 s: never delivered before the oldest message waited it.
    assert found[0][2] >= sent + 0.5 - 0.01


async def test_unbatched_queue_delivers_one_by_one_in_order_and_bodies_round_trip(
    app_dir: Path,
) -> None:
    bodies: list[Any] = ["text", 7, 2**70, None, [1, "two"], {"k": b"\x00bytes"}, 1.5]

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        for body in bodies:
            await app.env.JOBS.send(body)
        await until(lambda: drained(app, "jobs"), "every body consumed")
        assert [body for body, _ in deliveries(await batches(app, "jobs"))] == bodies


async def test_an_unhandled_exception_retries_the_whole_batch(app: TestApp) -> None:
    await app.env.JOBS.send_batch(
        [
            {"body": {"n": 1}},
            {"body": {"n": 2, "do": "raise", "until": 2}},
            {"body": {"n": 3}},
        ]
    )
    await until(lambda: drained(app, "jobs"), "the batch consumed")
    found = await batches(app, "jobs")
    assert [[(m[1]["n"], m[2]) for m in messages] for _, messages, _ in found] == [
        [(1, 1), (2, 1), (3, 1)],
        [(1, 2), (2, 2), (3, 2)],
    ]
    counts = queue_counts(app.config, "jobs")
    assert (counts.acked, counts.retried, counts.dead_lettered) == (3, 3, 0)


async def test_explicit_acks_and_retries_win_over_the_batch_and_the_exception(app: TestApp) -> None:
    await app.env.JOBS.send_batch(
        [
            {"body": {"n": 1, "do": "ack"}},  # acked, then the handler raises
            {"body": {"n": 2, "do": "retry", "until": 2, "delay": 0}},
            {"body": {"n": 3, "do": "raise", "until": 2}},
            {"body": {"n": 4}},  # undecided: retried with the exception
        ]
    )
    await until(lambda: drained(app, "jobs"), "the batch consumed")
    found = deliveries(await batches(app, "jobs"))
    assert [(body["n"], a) for body, a in found[:4]] == [(n, 1) for n in (1, 2, 3, 4)]
    # Retried with different delays, so not necessarily in one batch again.
    assert sorted((body["n"], a) for body, a in found[4:]) == [(2, 2), (3, 2), (4, 2)]


async def test_retry_all_and_ack_all_cover_the_undecided(app: TestApp) -> None:
    await app.env.JOBS.send_batch(
        [
            {"body": {"n": 1, "do": "ack"}},
            {"body": {"n": 2, "do": "retry_all", "until": 2, "delay": 0}},
            {"body": {"n": 3}},
        ]
    )
    await until(lambda: drained(app, "jobs"), "retry_all consumed")
    found = await batches(app, "jobs")
    assert [[(m[1]["n"], m[2]) for m in messages] for _, messages, _ in found] == [
        [(1, 1), (2, 1), (3, 1)],
        [(2, 2), (3, 2)],
    ]
    # ack_all holds even though the handler then raises.
    await app.env.JOBS.send_batch(
        [{"body": {"n": 4, "do": "ack_all"}}, {"body": {"n": 5, "do": "raise"}}]
    )
    await until(lambda: drained(app, "jobs"), "ack_all consumed")
    later = (await batches(app, "jobs"))[len(found) :]
    assert [[m[1]["n"] for m in messages] for _, messages, _ in later] == [[4, 5]]


async def test_a_poisoned_message_ends_in_the_dead_letter_queue_after_max_retries(
    app: TestApp,
) -> None:
    await app.env.JOBS.send({"n": "poison", "do": "raise"})
    await app.env.JOBS.send({"n": "fine"})
    await until(lambda: _has(app, "jobs-dlq"), "the poisoned message reached the dead-letter queue")
    await until(lambda: drained(app, "jobs"), "jobs emptied")
    jobs = deliveries(await batches(app, "jobs"))
    # max_retries = 2: delivered 1 + 2 times, then dead-lettered with its id and body.
    assert [a for body, a in jobs if body["n"] == "poison"] == [1, 2, 3]
    assert [a for body, a in jobs if body["n"] == "fine"] == [1]
    dead = await batches(app, "jobs-dlq")
    assert [(m[1], m[2]) for _, messages, _ in dead for m in messages] == [
        ({"n": "poison", "do": "raise"}, 1)
    ]
    poison_ids = {m[0] for _, messages, _ in await batches(app, "jobs") for m in messages}
    assert dead[0][1][0][0] in poison_ids
    assert queue_counts(app.config, "jobs").dead_lettered == 1


async def _has(app: TestApp, queue: str) -> bool:
    return bool(await batches(app, queue))


async def test_without_a_dead_letter_queue_a_poisoned_message_is_dropped(app: TestApp) -> None:
    await app.env.BATCHED.send_batch([{"body": {"n": n, "do": "raise"}} for n in range(4)])
    await until(lambda: drained(app, "batched"), "the poisoned batch dropped")
    attempts = [a for _, a in deliveries(await batches(app, "batched"))]
    assert attempts == [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4  # max_retries = 3
    counts = queue_counts(app.config, "batched")
    assert (counts.dropped, counts.dead_lettered, counts.acked) == (4, 0, 0)


async def test_delayed_messages_and_retry_delays_are_never_early(app: TestApp) -> None:
    sent = time.time()
    await app.env.JOBS.send({"n": "later"}, delay_seconds=2)
    await app.env.JOBS.send_batch(
        [{"body": {"n": "now"}}, {"body": {"n": "batch-later"}, "delay_seconds": 2.5}]
    )
    counted = time.time()
    delayed = queue_counts(app.config, "jobs").delayed
    # both are delayed unless the machine took seconds to send them (each delay runs from
    # its own send, so a delay whose end is still ahead of the count is surely delayed)
    assert sum(1 for d in (2, 2.5) if sent + d > time.time()) <= delayed <= 2
    assert delayed == 2 or counted > sent + 2
    await app.env.JOBS.send({"n": "again", "do": "retry", "delay": 1, "until": 2})
    await until(lambda: drained(app, "jobs"), "every delayed message consumed", 30)
    found = await batches(app, "jobs")
    at = {(m[1]["n"], m[2]): when for _, messages, when in found for m in messages}
    assert at[("later", 1)] >= sent + 2 - 0.01
    assert at[("batch-later", 1)] >= sent + 2.5 - 0.01
    assert at[("again", 2)] >= at[("again", 1)] + 1 - 0.01


async def test_messages_wait_while_no_consumer_or_handler_exists_and_survive_a_restart(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_object, "CONFIG_RETRY_MS", 200)  # 5 s in production

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        await app.env.PARKED.send({"n": 1})  # no consumer: it waits
        # The handler vanishes (a host that cannot import it): messages stay untouched.
        module = sys.modules["consumer"]
        consume = module.consume
        del module.consume
        try:
            await app.env.JOBS.send({"n": 2})
            for queue in ("parked", "jobs"):
                counts = queue_counts(app.config, queue)
                assert (counts.ready, counts.in_flight) == (1, 0)
        finally:
            vars(module)["consume"] = consume
        # Tried again a little later: delivered once, on its first attempt.
        await until(lambda: drained(app, "jobs"), "the waiting message consumed")
        assert deliveries(await batches(app, "jobs")) == [({"n": 2}, 1)]
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        assert queue_counts(app.config, "parked").ready == 1
        await app.env.PARKED.send({"n": 3})
        assert queue_counts(app.config, "parked").ready == 2


async def test_a_handler_that_cannot_be_imported_fails_the_start(app_dir: Path) -> None:
    toml = app_dir / "raydo.toml"
    text = toml.read_text()
    toml.write_text(text.replace('handler = "consumer:consume_dead"', 'handler = "consumer:nope"'))
    with pytest.raises(AppLoadError, match=r"handler of queue 'jobs-dlq'.*consumer:nope"):
        async with start_app(app_dir, storage=CONFIGURED_STORAGE):
            pass
    # Without `handler`, the consumer's handler is the `queue` function of main's module.
    toml.write_text(text.replace('handler = "consumer:consume_dead"\n', ""))
    with pytest.raises(AppLoadError, match="app:queue"):
        async with start_app(app_dir, storage=CONFIGURED_STORAGE):
            pass


async def test_malformed_and_oversized_messages_are_refused_and_nothing_is_sent(
    app: TestApp,
) -> None:
    jobs = app.env.PARKED
    with pytest.raises(LimitExceeded) as too_big:
        await jobs.send(b"x" * (128 * 1024))
    assert too_big.value.limit == "queue_message_bytes"
    await jobs.send(b"x" * (128 * 1024 - 8))  # just fits, encoded
    with pytest.raises(LimitExceeded) as too_many:
        await jobs.send_batch([{"body": n} for n in range(101)])
    assert too_many.value.limit == "queue_batch_messages"
    with pytest.raises(LimitExceeded) as too_much:
        await jobs.send_batch([{"body": b"x" * 100_000} for _ in range(3)])
    assert too_much.value.limit == "queue_batch_bytes"
    with pytest.raises(EncodeError, match="queue message body"):
        await jobs.send({"a": {1, 2}})
    with pytest.raises(EncodeError):
        await jobs.send_batch([{"body": 1}, {"body": object()}])
    for delay in (-1, 43_201, math.nan, math.inf):
        with pytest.raises(ValueError, match="delay"):
            await jobs.send(1, delay_seconds=delay)
    for bad_delay in (True, "5", None):
        with pytest.raises(TypeError, match="delay_seconds"):
            await jobs.send(1, delay_seconds=bad_delay)
    for batch in ("abc", {"body": 1}, [1], [{"bdy": 1}], [{"body": 1, "delay": 1}], 5):
        with pytest.raises(TypeError):
            await jobs.send_batch(batch)
    with pytest.raises(ValueError, match="delay"):
        await jobs.send_batch([{"body": 1, "delay_seconds": -5}])
    await jobs.send_batch([])  # nothing to send is not an error
    assert queue_counts(app.config, "parked").ready == 1

    # The queue object checks what reaches it directly too.
    broker = getattr(app.gateway.placement.platform_env, queues.BROKER)  # type: ignore[union-attr]
    stub = broker.stub("parked")
    good = ["0" * 32, b"\x01", 0, None]
    for item in (
        ["../x", b"\x01", 0, None],
        ["0" * 32, "not bytes", 0, None],
        ["0" * 32, b"\x01", -1, None],
        ["0" * 32, b"\x01", 10**12, None],
        ["0" * 32, b"\x01", 0, "yesterday"],
        ["0" * 32, b"\x01"],
        "junk",
    ):
        with pytest.raises(ObjectError):
            await broker.stub("parked").enqueue([item])
    with pytest.raises(RemoteLimitExceeded):
        await stub.enqueue([["1" * 32, b"x" * (200 * 1024), 0, None]])
    with pytest.raises(ObjectError):
        await broker.stub("parked").enqueue("junk")
    stub = broker.stub("parked")
    assert await stub.enqueue([good, good]) == 1  # a repeated id is ignored
    assert queue_counts(app.config, "parked").ready == 2

    # Over HTTP, the app's handler lets the limit through as a 413.
    reply = await app.http.post("/send/PARKED", json={"messages": ["y" * 200_000]})
    assert reply.status_code == 413
    assert reply.json()["limit"] == "queue_message_bytes"


def test_message_and_batch_decisions() -> None:
    from datetime import UTC, datetime

    def batch() -> MessageBatch:
        at = datetime.now(UTC)
        return MessageBatch("q", [Message(str(n), n, at, 1) for n in range(3)])

    b = batch()
    b.messages[0].ack()
    b.messages[0].retry()  # the first decision is final
    b.messages[1].retry(delay_seconds=2)
    b.retry_all(delay_seconds=5)
    b.ack_all()
    assert b.outcome(failed=False) == (["0"], [("1", 2.0), ("2", 5.0)])
    assert batch().outcome(failed=True) == ([], [("0", None), ("1", None), ("2", None)])
    assert batch().outcome(failed=False) == (["0", "1", "2"], [])
    for bad in (-1, 43_201, math.nan):
        with pytest.raises(ValueError):
            batch().messages[0].retry(delay_seconds=bad)
        with pytest.raises(ValueError):
            batch().retry_all(delay_seconds=bad)
    with pytest.raises(TypeError):
        batch().messages[0].retry(delay_seconds="1")  # type: ignore[arg-type]


def test_the_plan_and_the_consumer_config(tmp_path: Path) -> None:
    assert queues.plan([], [], "app:app") == Plan()
    plan = queues.plan(
        [{"binding": "JOBS", "queue": "jobs"}],
        [{"queue": "jobs", "dead_letter_queue": "dlq"}, {"queue": "other", "handler": "h:f"}],
        "pkg.app:app",
    )
    assert [o.name for o in plan.objects] == ["_QUEUES"]
    assert plan.objects[0].internal and plan.objects[0].shards == 3
    assert [p.name for p in plan.platform] == ["_QUEUE_BROKER", "JOBS"]
    handlers = [c["handler"] for c in plan.platform[0].options["consumers"]]
    assert handlers == ["pkg.app:queue", "h:f"]  # main's module's `queue` by default

    base = 'name = "a"\nmain = "app:app"\n[[queues.consumers]]\nqueue = "q"\n'
    for extra, key in (
        ('handler = "not a reference"\n', "handler"),
        ("handler = 3\n", "handler"),
        ('handler = "mod:"\n', "handler"),
        ("retry_delay = -1\n", "retry_delay"),
        ("retry_delay = 43201\n", "retry_delay"),
        ("retry_delay = true\n", "retry_delay"),
    ):
        (tmp_path / "raydo.toml").write_text(base + extra)
        with pytest.raises(ConfigError) as err:
            load_config(tmp_path)
        assert err.value.key == f"queues.consumers[0].{key}"
    (tmp_path / "raydo.toml").write_text(base + 'handler = "jobs.work:consume"\nretry_delay = 0\n')
    consumer = load_config(tmp_path).queue_consumers[0]
    assert (consumer["handler"], consumer["retry_delay"]) == ("jobs.work:consume", 0.0)


async def test_the_queues_cli_lists_shows_and_purges(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["queues", "list", "--dir", str(app_dir)]) == 0  # before any storage exists
    assert "parked\t0\t0\t0\t0\t0" in capsys.readouterr().out
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        await app.env.PARKED.send_batch([{"body": {"n": n}} for n in range(3)])
        await app.env.PARKED.send({"n": "later"}, delay_seconds=3600)
    assert cli(["queues", "list", "--dir", str(app_dir)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0] == "queue\tready\tdelayed\tin_flight\tdead_lettered\tdropped"
    assert "parked\t3\t1\t0\t0\t0" in listing
    assert {line.split("\t")[0] for line in listing[1:]} == {
        "batched",
        "jobs",
        "jobs-dlq",
        "parked",
    }
    assert cli(["queues", "show", "parked", "--dir", str(app_dir), "--limit", "2"]) == 0
    shown = capsys.readouterr().out
    assert "ready: 3" in shown and "delayed: 1" in shown and '{"n": 0}' in shown
    assert '{"n": 2}' not in shown  # --limit 2
    assert cli(["queues", "show", "parked", "--dir", str(app_dir), "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert [m["state"] for m in data["messages"]] == ["ready"] * 3 + ["delayed"]
    assert data["oldest_age_s"] >= 0

    assert cli(["queues", "purge", "parked", "--dir", str(app_dir)]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert queue_counts(load_config(app_dir), "parked").ready == 3
    assert cli(["queues", "purge", "parked", "--dir", str(app_dir), "--yes"]) == 0
    assert "purged 4 message(s) from parked" in capsys.readouterr().out
    assert cli(["queues", "purge", "jobs", "--dir", str(app_dir), "--yes"]) == 0  # no file
    assert "purged 0" in capsys.readouterr().out

    for argv in (
        ["queues", "show", "nope", "--dir", str(app_dir)],
        ["queues", "purge", "../etc", "--dir", str(app_dir), "--yes"],
        ["queues", "show", "parked", "--dir", str(app_dir / "missing")],
    ):
        assert cli(argv) == 2
        assert "error" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["queues", "show", "parked", "--limit", "-1"])


def test_decisions_are_journaled_the_moment_they_are_made(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from raydo.bindings.queues._decisions import Journal, journal_leases, journal_path, read_journal

    queue_file = tmp_path / ("ab" * 32 + ".sqlite")
    journal = Journal(journal_path(queue_file, "0123456789abcdef"))
    at = datetime.now(UTC)
    batch = MessageBatch("q", [], _record=journal.record)
    batch.messages = [Message(str(n), n, at, 1, _record=journal.record) for n in range(4)]
    batch.messages[0].ack()
    # On disk before anything else happens, as a process killed right now would leave it.
    assert read_journal(journal.path).messages == {"0": ("ack", None)}
    batch.messages[0].retry()  # not a decision any more: the first one holds
    batch.messages[1].retry(delay_seconds=2)
    batch.retry_all(delay_seconds=5)
    batch.ack_all()
    journal.close()
    with journal.path.open("a") as torn:  # a writer that died mid-line
        torn.write('["3", "ac')
    found = read_journal(journal.path)
    assert found.messages == {"0": ("ack", None), "1": ("retry", 2.0)}
    assert found.batch == ("retry", 5.0)
    assert [found.decision(str(n)) for n in range(4)] == [
        ("ack", None),
        ("retry", 2.0),
        ("retry", 5.0),
        ("retry", 5.0),
    ]
    assert journal_leases(queue_file) == {"0123456789abcdef": journal.path}
    journal.remove()
    assert journal_leases(queue_file) == {} and read_journal(journal.path).batch is None


async def test_a_batch_after_a_code_reload_takes_the_new_handler(
    app: TestApp, app_dir: Path
) -> None:
    from raydo.actors import forget_app_modules

    await app.env.JOBS.send({"n": 1})
    await until(lambda: drained(app, "jobs"), "the first message consumed")
    source = app_dir / "consumer.py"
    text = source.read_text()
    edited = text.replace(
        "await log.record(batch.queue, ", "await log.record('edited-' + batch.queue, ", 1
    )
    assert edited != text
    source.write_text(edited)
    forget_app_modules(str(app_dir))  # what raydo dev's reload does in every host
    await app.env.JOBS.send({"n": 2})
    await until(lambda: drained(app, "jobs"), "the second message consumed")
    assert [queue for queue, _, _ in await batches(app)] == ["jobs", "edited-jobs"]
