"""The ``workers`` module of Cloudflare's Python Workers, on raydo.

Code written for the platform imports what it needs from here, unchanged::

    from workers import DurableObject, Response, WorkerEntrypoint

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            stub = self.env.COUNTER.getByName("a")
            return Response.json({"value": await stub.increment()})

Every name is a thin face over raydo's own objects, bindings and gateway (one
implementation, two spellings). A name of the platform's SDK that raydo does not offer is an
``AttributeError`` (an ``ImportError`` for ``from workers import ...``) saying what to use
instead.
"""

from . import asgi, wsgi
from ._context import Context
from ._durable import AlarmInvocationInfo, DurableObject, DurableObjectState
from ._entrypoint import WorkerEntrypoint
from ._env import DurableObjectId, DurableObjectNamespace, DurableObjectStub, WorkerEnv
from ._http import Blob, File, FormData, Headers, Request, Response, fetch
from ._websockets import WebSocket, WebSocketPair, WebSocketRequestResponsePair
from .unsupported import unsupported

__all__ = [
    "AlarmInvocationInfo",
    "Blob",
    "Context",
    "DurableObject",
    "DurableObjectId",
    "DurableObjectNamespace",
    "DurableObjectState",
    "DurableObjectStub",
    "File",
    "FormData",
    "Headers",
    "Request",
    "Response",
    "WebSocket",
    "WebSocketPair",
    "WebSocketRequestResponsePair",
    "WorkerEntrypoint",
    "WorkerEnv",
    "asgi",
    "fetch",
    "wsgi",
]


def __getattr__(name: str) -> object:
    raise unsupported("workers", name)
