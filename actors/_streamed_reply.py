"""The host's side of a ``StreamingResponse`` from an object's ``fetch``: its head and then
each of its chunks leave as they are produced, inside the object's turn.

In order: the writes the handler made so far commit (and become durable under
``durability = "full"``), then the reply body's stream opens towards the caller and the head
(status and headers) answers the event; then for each chunk the generator yields, what the
turn wrote before it commits first (the output gate: no chunk leaves ahead of a write made
before it), and the chunk goes as soon as the caller's window has room, so a client that
reads slowly slows the generator. At the end the stream ends; if the generator raises, the
stream ends with the error and the turn fails as any other would; if the caller goes away
(the client left), the generator is closed where it stands (its ``finally`` runs) and the
event ends normally. The turn lasts as long as the body does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.responses import StreamingResponse

from raydo.storage.limits import LimitExceeded, Limits

from ._errors import StreamBroken
from ._payloads import FetchReply
from ._streams import HostStreams, committed, stream_error

log = logging.getLogger("raydo.streams")

Commit = Callable[[], Any]


async def stream_reply(
    response: StreamingResponse,
    streams: HostStreams,
    commit: Commit,
    answer: Callable[[Any], None],
    limits: Limits,
) -> None:
    """Send ``response`` to the caller as it is produced (see the module's text); ``answer``
    gives the caller its reply (the head) before the turn ends."""
    await committed(commit)
    sink = streams.open_reply()
    headers = [[k, v] for k, v in response.raw_headers]
    answer(FetchReply(response.status_code, headers, None).encode())
    chunks = response.body_iterator
    size = 0
    try:
        async for chunk in chunks:
            data = chunk.encode(response.charset) if isinstance(chunk, str) else bytes(chunk)
            size += len(data)
            if size > limits.stream_bytes:
                raise LimitExceeded(
                    "stream_bytes",
                    f"the streamed response body is over {limits.stream_bytes} bytes",
                )
            await committed(commit)
            try:
                await sink.write(data)
            except StreamBroken as exc:  # the caller took no more: its client left
                log.debug("a streamed reply ended early: %s", exc)
                return
    except BaseException as exc:
        sink.end(stream_error(exc))
        raise
    else:
        sink.end()
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
