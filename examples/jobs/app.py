"""The jobs example: ``POST /jobs`` enqueues an email; the queue's consumer "sends" it.

* ``POST /jobs`` with ``{"to": "a@example.com", "subject": "hi"}``: enqueue, answer 202;
* ``GET /jobs/sent``: the emails sent; ``GET /jobs/dead``: the jobs that ended in the
  dead-letter queue (mail to ``poison@example.com`` always fails, to show it).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from raydo.bindings.queues import MessageBatch

MAX_ADDRESS = 254
MAX_SUBJECT = 200


class SendFailed(Exception):
    """The (pretend) mail server refused the email."""


def _job(data: Any) -> dict[str, str] | str:
    """The job in a request body, or what is wrong with it."""
    if not isinstance(data, dict):
        return 'send a JSON object: {"to": ..., "subject": ...}'
    to, subject = data.get("to"), data.get("subject")
    if not isinstance(to, str) or "@" not in to or len(to) > MAX_ADDRESS:
        return f'"to" must be an email address of at most {MAX_ADDRESS} characters'
    if not isinstance(subject, str) or len(subject) > MAX_SUBJECT:
        return f'"subject" must be a string of at most {MAX_SUBJECT} characters'
    return {"to": to, "subject": subject}


async def enqueue(request: Request) -> Response:
    try:
        data = await request.json()
    except ValueError:
        return JSONResponse({"error": "the body is not JSON"}, status_code=400)
    job = _job(data)
    if isinstance(job, str):
        return JSONResponse({"error": job}, status_code=400)
    await request.state.env.EMAILS.send(job)
    return JSONResponse({"queued": job}, status_code=202)


async def sent(request: Request) -> Response:
    return JSONResponse(await request.state.env.OUTBOX.get_by_name("outbox").emails("sent"))


async def dead(request: Request) -> Response:
    return JSONResponse(await request.state.env.OUTBOX.get_by_name("outbox").emails("dead"))


async def send_email(job: dict[str, str]) -> None:
    """Pretend to talk to a mail server: one address always fails."""
    if job["to"] == "poison@example.com":
        raise SendFailed(f"mailbox {job['to']} refuses all mail")


async def queue(batch: MessageBatch, env: Any) -> None:
    """The consumer of ``emails``: send each email, retrying only those that fail."""
    outbox = env.OUTBOX.get_by_name("outbox")
    for message in batch.messages:
        try:
            await send_email(message.body)
        except SendFailed:
            message.retry()  # after the consumer's backoff; dead-lettered after max_retries
            continue
        await outbox.record(message.id, message.body, "sent", message.attempts)
        message.ack()


async def dead_letters(batch: MessageBatch, env: Any) -> None:
    """The consumer of ``emails-dlq``: keep what could not be sent, for a human to look at."""
    outbox = env.OUTBOX.get_by_name("outbox")
    for message in batch.messages:
        await outbox.record(message.id, message.body, "dead", message.attempts)


app = Starlette(
    routes=[
        Route("/jobs", enqueue, methods=["POST"]),
        Route("/jobs/sent", sent, methods=["GET"]),
        Route("/jobs/dead", dead, methods=["GET"]),
    ]
)
