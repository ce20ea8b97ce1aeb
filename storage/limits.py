"""The limits every object and event is held to.

Each breach raises :class:`LimitExceeded` naming the limit (the field name below), and
nothing is written. All are configurable through the ``[limits]`` table of ``raydo.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class LimitExceeded(ValueError):
    """A configured limit was breached; ``limit`` names it, nothing was written."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(f"{message} (limit {limit})")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Limits:
    key_bytes: int = 2 * KiB
    """A storage key, UTF-8 encoded."""
    value_bytes: int = 2 * MiB
    """A storage value, msgpack encoded; also the longest string or blob in SQL."""
    name_bytes: int = 1 * KiB
    """An object name given to ``id_from_name``, UTF-8 encoded."""
    sql_statement_bytes: int = 100_000
    """One ``sql.exec`` query text."""
    sql_params: int = 100
    """Bound parameters of one statement."""
    storage_bytes: int = 10 * GiB
    """One object's SQLite file."""
    request_bytes: int = 8 * MiB
    """An HTTP request body accepted by the gateway or sent to an object's ``fetch``."""
    http_target_bytes: int = 8 * KiB
    """The target (path and query) of one HTTP request; a longer one is answered 414."""
    http_header_bytes: int = 64 * KiB
    """The request line and headers of one HTTP request; more is answered 431."""
    http_header_seconds: int = 20
    """Time for a request's head to arrive, from the connection's start or its previous
    response; past it the connection is answered 408 and closed."""
    http_body_idle_seconds: int = 60
    """Time a request body may stall while the app waits for more; past it the connection
    ends."""
    connections: int = 50_000
    """Open connections (HTTP and WebSocket) of one gateway process; a new one past it is
    answered 503 and closed."""
    message_bytes: int = 16 * MiB
    """One encoded event or reply: RPC arguments, results, fetch responses."""
    stream_bytes: int = 10 * GiB
    """One HTTP body that streams through an object (a request body the object reads with
    ``request.stream()``, a ``StreamingResponse``), counted as it passes."""
    stream_idle_seconds: int = 60
    """Time one side of a streamed body may wait for the other: the reader for the next
    chunk, the writer for room in its window (a peer that stopped reading)."""
    stream_window_bytes: int = 1 * MiB
    """Bytes of one streamed body in flight between a caller and a host before the reader
    has taken them: the sender waits for credit past it."""
    websocket_message_bytes: int = 1 * MiB
    """One WebSocket message, either way; a bigger one from a client closes it with 1009."""
    attachment_bytes: int = 16 * KiB
    """A socket's attachment (``ws.serialize_attachment``), encoded."""
    socket_tags: int = 10
    """Tags on one socket."""
    tag_chars: int = 256
    """Characters of one tag."""
    socket_queue: int = 1024
    """Messages waiting to be sent to one client; past it the client is closed (1008)."""
    websocket_control_bytes: int = 1 * MiB
    """Replies to a client's control frames (pongs) the gateway holds for a client that does
    not read them; past it the client is closed (1008)."""
    host_link_bytes: int = 64 * MiB
    """Frames one gateway process holds for one host that is not reading them; past it a
    call fails at once with ``Overloaded``."""
    alarm_seconds: int = 900
    """Wall time of one ``alarm()`` run; past it the run is cancelled and counts as failed."""
    kv_key_bytes: int = 512
    """A key of a key-value namespace (``[[kv_namespaces]]``), UTF-8 encoded."""
    kv_value_bytes: int = 25 * MiB
    """A value of a key-value namespace; carried in pieces, so it may exceed ``message_bytes``."""
    kv_metadata_bytes: int = 1 * KiB
    """The metadata of a key-value pair, serialized as JSON."""
    queue_message_bytes: int = 128 * KiB
    """One queue message's body, msgpack encoded (``send``, ``send_batch``)."""
    queue_batch_bytes: int = 256 * KiB
    """The bodies of one ``send_batch`` together, encoded."""
    queue_batch_messages: int = 100
    """Messages in one ``send_batch``."""
    blob_key_bytes: int = 1 * KiB
    """A key of a blob bucket (``[[r2_buckets]]``), UTF-8 encoded."""
    blob_put_bytes: int = 5 * GiB
    """One body stored by a single put (or presigned PUT), and one multipart part."""
    blob_metadata_bytes: int = 2 * KiB
    """A blob's custom metadata: keys and values together, UTF-8 encoded."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def check(self, limit: str, size: int, what: str) -> None:
        """Raise :class:`LimitExceeded` when ``size`` is over the limit called ``limit``."""
        allowed = getattr(self, limit)
        if size > allowed:
            raise LimitExceeded(limit, f"{what} is {size} bytes; at most {allowed} are allowed")


DEFAULT_LIMITS = Limits()
