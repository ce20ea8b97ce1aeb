"""``self.env`` as a Worker sees it: raydo's bindings under the platform's method names.

* A Durable Object namespace gets ``idFromName``, ``newUniqueId``, ``idFromString``, ``get``
  and ``getByName``; its stubs ``fetch`` (a :class:`~workers.Request`, or a URL with ``method``,
  ``headers``, ``body``) and call public methods over RPC, as raydo's stubs do.
* Every other binding (D1, KV, R2, queues) is raydo's own object behind a thin face that
  spells camelCase names and options in raydo's snake_case (:mod:`workers._bindings`).
* ``env.ASSETS`` (``assets.binding``): ``fetch(request)`` answers a :class:`~workers.Response`.
* Plain values (``vars``, secrets) are what they are: strings.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request as _StarletteRequest
from starlette.websockets import WebSocket as _StarletteWebSocket

from raydo.actors import Env, Namespace, ObjectId, Stub, env_bindings
from raydo.bindings.assets import AssetServer

from ._bindings import binding_face
from ._http import Request, Response


class DurableObjectId:
    """An object's id: ``str(id)`` and ``id.toString()`` are its 64 hex digits, ``id.name``
    the name it was made from (or None), ``id.equals(other)``."""

    def __init__(self, object_id: ObjectId) -> None:
        self._id = object_id

    @property
    def name(self) -> str | None:
        return self._id.name

    def toString(self) -> str:
        return str(self._id)

    def equals(self, other: DurableObjectId) -> bool:
        return isinstance(other, DurableObjectId) and self._id == other._id

    def __str__(self) -> str:
        return str(self._id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DurableObjectId) and self._id == other._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"DurableObjectId({self._id})"


class DurableObjectStub:
    """A stub: ``await stub.fetch(request)`` and ``await stub.method(...)`` (RPC)."""

    def __init__(self, stub: Stub) -> None:
        self._stub = stub
        self.id = DurableObjectId(stub.id)

    @property
    def name(self) -> str | None:
        return self._stub.name

    async def fetch(
        self,
        request: Request | str,
        *,
        method: str | None = None,
        headers: Any = None,
        body: Any = None,
    ) -> Response:
        """Send a request to the object's ``fetch``; a request the Worker received (or a
        WebSocket upgrade) goes through as raydo streams it, body and reply."""
        if isinstance(request, Request) and method is headers is body is None:
            source = request._source
            if isinstance(source, _StarletteWebSocket):  # an upgrade, handed to the object
                return Response._from_starlette(await self._stub.fetch(source))  # type: ignore[arg-type]
            if isinstance(source, _StarletteRequest) and not request.bodyUsed:
                return Response._from_starlette(await self._stub.fetch(source))
        request = Request(request, method=method, headers=headers, body=body)
        native = await self._stub.fetch(
            request.url,
            method=request.method,
            headers=list(request.headers.items()),
            body=await request._load(),
        )
        return Response._from_starlette(native)

    def __getattr__(self, method: str) -> Any:
        return getattr(self._stub, method)

    def __repr__(self) -> str:
        return f"DurableObjectStub({self._stub.id})"


class DurableObjectNamespace:
    """``env.MY_OBJECT``: ids and stubs with the platform's names."""

    def __init__(self, namespace: Namespace) -> None:
        self._namespace = namespace

    def idFromName(self, name: str) -> DurableObjectId:
        return DurableObjectId(self._namespace.id_from_name(name))

    def newUniqueId(self, options: Any = None) -> DurableObjectId:
        if options:
            raise TypeError("newUniqueId() options (jurisdiction) are not supported by raydo")
        return DurableObjectId(self._namespace.new_unique_id())

    def idFromString(self, text: str) -> DurableObjectId:
        return DurableObjectId(self._namespace.id_from_string(text))

    def get(self, object_id: DurableObjectId, options: Any = None) -> DurableObjectStub:
        if not isinstance(object_id, DurableObjectId):
            raise TypeError(
                "get() takes an id from idFromName, newUniqueId or idFromString,"
                f" got {type(object_id).__name__}"
            )
        return DurableObjectStub(self._namespace.get(object_id._id))

    def getByName(self, name: str, options: Any = None) -> DurableObjectStub:
        return DurableObjectStub(self._namespace.get_by_name(name))

    def jurisdiction(self, name: str) -> DurableObjectNamespace:
        raise NotImplementedError(
            "jurisdictions are not supported: raydo places objects on the hosts it runs"
        )


class _Assets:
    """``env.ASSETS``: ``await fetch(request)`` (a Request or URL) answers the asset as a
    :class:`~workers.Response`, as the platform's assets binding does."""

    def __init__(self, assets: AssetServer) -> None:
        self._assets = assets

    async def fetch(self, request: Request | str, **init: Any) -> Response:
        given = Request(request, **init) if init or not isinstance(request, Request) else request
        return Response._from_starlette(await self._assets.fetch(given))

    def __repr__(self) -> str:
        return "Fetcher(assets)"


class WorkerEnv:
    """``self.env``: each binding by name, as the platform spells its methods; a missing one
    is an ``AttributeError`` listing those that exist."""

    def __init__(self, env: Env) -> None:
        object.__setattr__(self, "_env", env)
        object.__setattr__(self, "_faces", {})

    def __getattr__(self, name: str) -> Any:
        faces: dict[str, Any] = object.__getattribute__(self, "_faces")
        if name in faces:
            return faces[name]
        value = getattr(object.__getattribute__(self, "_env"), name)
        if isinstance(value, Namespace):
            value = DurableObjectNamespace(value)
        elif isinstance(value, AssetServer):
            value = _Assets(value)
        elif not isinstance(value, str | int | float | bool | dict | list) and value is not None:
            value = binding_face(value)
        faces[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("env is read-only")

    def __contains__(self, name: str) -> bool:
        return name in object.__getattribute__(self, "_env")

    def __dir__(self) -> list[str]:
        return sorted(env_bindings(object.__getattribute__(self, "_env")))


def worker_env(env: Any) -> Any:
    """The platform-shaped face of raydo's ``env`` (anything else is given back as it is)."""
    if isinstance(env, WorkerEnv) or not isinstance(env, Env):
        return env
    return WorkerEnv(env)
