"""Namespaces (``env.ROOM``) and stubs: how code reaches objects.

Making an id or a stub contacts nothing; the first event sent through a stub reaches the
object's host, which constructs the object.
"""

from __future__ import annotations

import functools
import itertools
import os
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket as StarletteWebSocket

from raydo.storage import codec
from raydo.storage.errors import TransactionError

from . import _tracing
from ._errors import CallRefused, ObjectReset
from ._http import reply_response, url_payload
from ._ids import IdScheme, ObjectId
from ._object import RESERVED_NAMES
from ._payloads import Control, FetchReply, RpcCall
from ._placement import Placement
from ._relay import relay
from ._spec import BindingSpec
from ._turn import current_turn
from .types import Event, EventKind
from .websockets import hand_over

_chain_prefix = os.urandom(6).hex()
_chain_counter = itertools.count()


def _new_chain() -> str:
    return f"{_chain_prefix}{next(_chain_counter):x}"


class Namespace:
    """A Durable Object binding: makes ids and stubs for one class."""

    def __init__(self, binding: BindingSpec, placement: Placement) -> None:
        self.binding = binding
        self._placement = placement
        self._ids: IdScheme = placement.spec.id_scheme(binding)
        # Decided once: without a tracer, events go straight to the placement.
        self._deliver = placement.deliver
        if _tracing.enabled():
            self._deliver = functools.partial(_tracing.deliver_traced, placement.deliver)

    @property
    def name(self) -> str:
        return self.binding.name

    def id_from_name(self, name: str) -> ObjectId:
        """The id of the object called ``name``: the same in every process, forever."""
        return self._ids.from_name(name)

    def new_unique_id(self) -> ObjectId:
        """A fresh random id (``id.name`` is None)."""
        return self._ids.unique()

    def id_from_string(self, text: str) -> ObjectId:
        """Parse ``str(id)``; ``ValueError`` for malformed ids and ids of another namespace."""
        return self._ids.from_string(text)

    def get(self, object_id: ObjectId) -> Stub:
        """A stub for ``object_id``; nothing is contacted until a call is made."""
        if not isinstance(object_id, ObjectId):
            raise TypeError(f"get() takes an ObjectId, got {type(object_id).__name__}")
        if object_id.namespace != self.binding.name or not self._ids.owns(object_id.hex):
            raise ValueError(f"{object_id!r} does not belong to namespace {self.binding.name}")
        return Stub(self, object_id)

    def get_by_name(self, name: str) -> Stub:
        """Shorthand for ``get(id_from_name(name))``."""
        return Stub(self, self._ids.from_name(name))

    async def control(self, object_id: ObjectId, operation: str, *arguments: Any) -> Any:
        """Send a test or inspection hook (a :class:`~actors._payloads.Control` operation) to
        an object's host (see ``gateway.testing``); its reply."""
        return await self._send(
            object_id, EventKind.CONTROL, Control(operation, arguments).encode()
        )

    async def _send(
        self, object_id: ObjectId, kind: EventKind, payload: Any, streams: Any = None
    ) -> Any:
        turn = current_turn.get()
        if turn is not None and turn.ended:
            turn = None  # a task that outlived the event that started it is on its own
        if turn is not None:
            # The output gate: what this object wrote so far commits before the call leaves.
            if turn.storage.in_explicit_transaction:
                raise TransactionError(
                    "cannot call another object inside storage.transaction():"
                    " a transaction cannot be held across a call"
                )
            durable = turn.commit()
            if durable is not None:  # group commit: the call leaves once the writes are durable
                await durable
            chain = turn.chain
        else:
            chain = _new_chain()
        event = Event(self.binding.name, object_id.hex, object_id.name, chain, kind, payload)
        event.streams = streams
        key = self._placement.spec.host_for(self.binding, object_id.hex)
        if turn is None:
            return await self._deliver(key, event)
        turn.calls_out += 1
        try:
            return await self._deliver(key, event)
        finally:
            turn.calls_out -= 1


class Stub:
    """A handle on one object: ``await stub.fetch(...)`` and ``await stub.method(...)``."""

    __slots__ = ("_broken", "_namespace", "id")

    def __init__(self, namespace: Namespace, object_id: ObjectId) -> None:
        self._namespace = namespace
        self.id = object_id
        self._broken: ObjectReset | None = None

    async def _send(self, kind: EventKind, payload: Any, streams: Any = None) -> Any:
        if self._broken is not None:
            raise ObjectReset(
                f"{self._broken} (this stub stays broken: get a new stub)",
                limit=self._broken.limit,
            )
        try:
            return await self._namespace._send(self.id, kind, payload, streams)
        except ObjectReset as exc:
            self._broken = exc
            raise

    @property
    def name(self) -> str | None:
        return self.id.name

    def __repr__(self) -> str:
        return f"Stub({self.id!r})"

    async def fetch(
        self,
        request_or_url: Request | str,
        *,
        method: str = "GET",
        headers: Any = None,
        body: bytes | str | None = None,
    ) -> Response:
        """Send an HTTP request to the object's ``fetch`` and return its response.

        Takes a Starlette ``Request`` (its method, path, query, headers and body are passed
        on) or a URL with ``method``, ``headers`` and ``body``.

        A request's body longer than 256 KiB or of unknown length streams to the object as
        it reads it, and a ``StreamingResponse`` the object returns to a request streams back
        (the response sends each chunk to the client as it is produced; see
        :mod:`actors._relay`). A URL's body and its reply travel whole (a reply streamed by
        the object is collected, at most ``message_bytes``).
        """
        limits = self._namespace._placement.spec.limits
        if isinstance(request_or_url, StarletteWebSocket):
            await self._upgrade(request_or_url)
            return Response(status_code=101)
        if isinstance(request_or_url, Request):
            return await relay(
                self._send, request_or_url, limits, from_client=current_turn.get() is None
            )
        if isinstance(request_or_url, str):
            payload = url_payload(request_or_url, method, headers, body, limits)
        else:
            raise TypeError(
                "fetch takes a starlette Request or a URL string, got"
                f" {type(request_or_url).__name__}"
            )
        reply = await self._send(EventKind.FETCH, payload.encode())
        return reply_response(FetchReply.decode(reply))

    async def _upgrade(self, websocket: StarletteWebSocket) -> None:
        """Hand a WebSocket upgrade to the object, then serve the socket until it closes."""
        namespace = self._namespace
        placement = namespace._placement
        await hand_over(
            websocket,
            placement.hub,
            placement.spec.host_for(namespace.binding, self.id.hex),
            self.id.hex,
            send_upgrade=self._send,
            # Not through the stub: a reset seen by one socket event must not break it.
            send=functools.partial(namespace._send, self.id),
        )

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)
        if method.startswith("_"):
            raise CallRefused(f"{method} is private: RPC reaches public methods only")
        if method in RESERVED_NAMES:
            raise CallRefused(f"{method} is reserved and cannot be called over RPC")

        async def call(*args: Any, **kwargs: Any) -> Any:
            packed = codec.encode([args, kwargs])
            limits = self._namespace._placement.spec.limits
            limits.check("message_bytes", len(packed), f"the arguments of {method}()")
            result = await self._send(EventKind.RPC, RpcCall(method, packed).encode())
            return codec.decode(result)

        call.__name__ = method
        return call
