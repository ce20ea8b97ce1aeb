"""The jobs example: jobs enqueued over HTTP are sent; the poisoned one is dead-lettered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from raydo.gateway.cli_queues import queue_counts
from raydo.gateway.testing import start_app


async def test_jobs_are_sent_and_the_poisoned_one_ends_in_the_dead_letter_queue(
    app_copy: Callable[[str], Path],
) -> None:
    async with start_app(app_copy("jobs")) as app:
        for n in range(12):
            job = {"to": f"user{n}@example.com", "subject": f"hello {n}"}
            assert (await app.http.post("/jobs", json=job)).status_code == 202
        poison = {"to": "poison@example.com", "subject": "doomed"}
        assert (await app.http.post("/jobs", json=poison)).status_code == 202

        deadline = time.monotonic() + 30
        while not (await app.http.get("/jobs/dead")).json():
            assert time.monotonic() < deadline, "the poisoned job never reached the DLQ"
            await asyncio.sleep(0.1)
        sent = (await app.http.get("/jobs/sent")).json()
        assert sorted(e["to"] for e in sent) == sorted(f"user{n}@example.com" for n in range(12))
        assert all(e["attempts"] == 1 for e in sent)  # the poison did not resend its batch
        dead = (await app.http.get("/jobs/dead")).json()
        assert [(e["to"], e["subject"]) for e in dead] == [("poison@example.com", "doomed")]
        counts = queue_counts(app.config, "emails")
        assert (counts.acked, counts.dead_lettered, counts.ready) == (12, 1, 0)

        for bad in ('{"to": "x"}', "[]", "not json", '{"to": "a@b", "subject": 5}'):
            reply = await app.http.post("/jobs", content=bad)
            assert reply.status_code == 400 and "error" in reply.json()
        long = {"to": "a@example.com", "subject": "s" * 201}
        assert (await app.http.post("/jobs", json=long)).status_code == 400
