"""raydo's platform bindings (D1, KV, R2, queues, Vectorize) under the platform's names.

Every binding gets a thin face that spells camelCase names in raydo's snake_case:

* methods: ``sendBatch`` is ``send_batch``, ``getByIds`` is ``get_by_ids``;
* options, given as keywords (``put(key, value, expirationTtl=60)``) or, as JavaScript passes
  them, as a trailing mapping (``put(key, value, {"expirationTtl": 60})``): a last argument
  that is a mapping whose keys all name parameters of the method is taken as its options
  (so ``send({"n": 1})`` still sends the dict). Only the top level is renamed: the keys of
  ``customMetadata`` are the user's own.

What already has the platform's name (``get``, ``put``, ``prepare``) passes straight through.
D1 also gets its rows as the platform's Python code reads them: dicts whose columns read as
attributes too (``row["name"]`` and ``row.name``).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from raydo.bindings.d1 import D1Database, D1Result, PreparedStatement
from raydo.bindings.kv import KVNamespace
from raydo.bindings.queues import Queue
from raydo.bindings.r2 import R2Bucket, R2Object, R2ObjectBody, R2Objects

from ._storage import Row

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """``sendBatch`` -> ``send_batch``; ``expirationTtl`` -> ``expiration_ttl``."""
    return _CAMEL.sub(r"_\1", name).lower()


def _parameters(method: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return set()


def call_with_options(
    method: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Any:
    """``method(*args, **kwargs)`` with camelCase options (keywords or a trailing mapping)
    in snake_case."""
    options = {snake(k): v for k, v in kwargs.items()}
    last = args[-1] if args else None
    if isinstance(last, Mapping) and last and all(isinstance(k, str) for k in last):
        named = {snake(k): v for k, v in last.items()}
        if set(named) <= _parameters(method):
            args, options = args[:-1], {**named, **options}
    return method(*args, **options)


class BindingFace:
    """A platform binding with camelCase names mapped to raydo's."""

    def __init__(self, binding: Any) -> None:
        self._binding = binding

    def __getattr__(self, name: str) -> Any:
        target = self._binding
        attribute = getattr(target, name, None)
        if attribute is None and snake(name) != name:
            attribute = getattr(target, snake(name), None)
        if attribute is None:
            return getattr(target, name)  # raydo's own error, naming what exists
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return call_with_options(attribute, args, kwargs)

        call.__name__ = name
        return call

    def __repr__(self) -> str:
        return f"{type(self._binding).__name__}(as on the platform)"


def _rows(result: D1Result) -> D1Result:
    return dataclasses.replace(result, results=[Row(r) for r in result.results])


class D1Statement:
    """A prepared statement: ``bind(...)``, ``first(colName)``, ``all()``, ``run()``,
    ``raw(columnNames=)`` (or ``raw({"columnNames": True})``)."""

    def __init__(self, statement: PreparedStatement) -> None:
        self._statement = statement

    def bind(self, *values: Any) -> D1Statement:
        return D1Statement(self._statement.bind(*values))

    async def first(self, colName: str | None = None) -> Any:
        row = await self._statement.first(colName)
        return Row(row) if colName is None and row is not None else row

    async def all(self) -> D1Result:
        return _rows(await self._statement.all())

    async def run(self) -> D1Result:
        return _rows(await self._statement.run())

    async def raw(self, options: Mapping[str, Any] | None = None, **kwargs: Any) -> list[list[Any]]:
        given = {**(options or {}), **kwargs}
        names = bool(given.pop("columnNames", given.pop("column_names", False)))
        if given:
            raise TypeError(f"raw() takes columnNames only, not {', '.join(sorted(given))}")
        return await self._statement.raw(column_names=names)

    def __repr__(self) -> str:
        return f"D1Statement({self._statement.sql[:80]!r})"


class D1Face(BindingFace):
    """``env.DB``: ``prepare(sql)``, ``batch([...])``, ``exec(sql)``, rows as :class:`Row`."""

    def prepare(self, query: str) -> D1Statement:
        return D1Statement(self._binding.prepare(query))

    async def batch(self, statements: Sequence[D1Statement]) -> list[D1Result]:
        if not all(isinstance(s, D1Statement) for s in statements):
            raise TypeError("batch() takes statements made by env.DB.prepare(...)")
        return [_rows(r) for r in await self._binding.batch([s._statement for s in statements])]


#: A message's ``contentType`` on the platform; raydo encodes every body with its own codec.
_CONTENT_TYPES = frozenset({"json", "text", "bytes", "v8"})


def _without_content_type(where: str, given: Mapping[Any, Any]) -> dict[Any, Any]:
    """``given``'s keys in snake_case, its ``contentType`` checked and dropped."""
    out = {snake(k) if isinstance(k, str) else k: v for k, v in given.items()}
    kind = out.pop("content_type", "json")
    if kind not in _CONTENT_TYPES:
        raise TypeError(
            f"{where}: contentType must be one of {sorted(_CONTENT_TYPES)}, got {kind!r}"
        )
    return out


def _message(i: int, message: Any) -> Any:
    """One ``sendBatch`` message with the platform's keys (``body``, ``delaySeconds``,
    ``contentType``) in raydo's (``body``, ``delay_seconds``)."""
    if not isinstance(message, Mapping):
        return message  # raydo's own error says what a message must be
    return _without_content_type(f"sendBatch message {i}", message)


class QueueFace(BindingFace):
    """``env.JOBS``: ``send(body, {"delaySeconds": ...})`` and ``sendBatch(messages)`` whose
    messages are ``{"body": ..., "delaySeconds": ..., "contentType": ...}``."""

    async def send(
        self, body: Any, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """``send(body)``, ``send(body, {"delaySeconds": 5, "contentType": "json"})`` or the
        same as keywords."""
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"send(body, options): options is a dict, not {type(options).__name__}")
        given = _without_content_type("send", {**(options or {}), **kwargs})
        await self._binding.send(body, **given)

    async def sendBatch(self, messages: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(messages, Sequence) and not isinstance(messages, str | bytes):
            messages = [_message(i, m) for i, m in enumerate(messages)]
        await call_with_options(self._binding.send_batch, (messages, *args), kwargs)


#: KV's value types as the platform names them, in raydo's names.
_KV_TYPES = {"arrayBuffer": "bytes"}


def _kv_type(value: Any) -> Any:
    return _KV_TYPES.get(value, value) if isinstance(value, str) else value


class KVFace(BindingFace):
    """``env.CACHE``: ``get`` and ``getWithMetadata`` take the platform's value types
    (``"text"``, ``"json"``, ``"arrayBuffer"``, ``"stream"``), as a second argument, a
    ``{"type": ...}`` mapping or a keyword; the rest passes through."""

    def _typed(self, method: Any, key: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if args and isinstance(args[-1], Mapping) and "type" in args[-1]:
            args = [*args[:-1], {**args[-1], "type": _kv_type(args[-1]["type"])}]
        elif args:
            args = [_kv_type(args[0]), *args[1:]]
        if "type" in kwargs:
            kwargs = {**kwargs, "type": _kv_type(kwargs["type"])}
        return call_with_options(method, (key, *args), kwargs)

    async def get(self, key: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._typed(self._binding.get, key, args, kwargs)

    async def getWithMetadata(self, key: Any, *args: Any, **kwargs: Any) -> Any:
        """``{value, metadata, cacheStatus}`` as the platform answers (read as attributes
        or items); raydo's ``cache_status`` works too."""
        found = await self._typed(self._binding.get_with_metadata, key, args, kwargs)
        return KVValueFace(found)


class KVValueFace:
    """``getWithMetadata``'s answer with the platform's names."""

    __slots__ = ("_found",)

    def __init__(self, found: Any) -> None:
        self._found = found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._found, "cache_status" if name == "cacheStatus" else name)

    def __getitem__(self, name: str) -> Any:
        if name not in ("value", "metadata", "cacheStatus", "cache_status"):
            raise KeyError(name)
        return getattr(self, name)

    def __repr__(self) -> str:
        return f"KVValueFace({self._found!r})"


class R2ObjectFace:
    """An object ``get``/``head``/``put`` returned, with the platform's names: ``httpEtag``,
    ``httpMetadata``, ``customMetadata``, ``writeHttpMetadata(headers)``, ``uploaded`` ...,
    and for a body ``arrayBuffer()``, ``bytes()``, ``text()``, ``json()``, ``blob()``,
    ``bodyUsed``; raydo's own names work too."""

    def __init__(self, found: R2Object) -> None:
        self._object = found

    def __getattr__(self, name: str) -> Any:
        found = object.__getattribute__(self, "_object")
        if hasattr(found, name):
            return getattr(found, name)
        return getattr(found, snake(name))  # raydo's own error, naming what exists

    @property
    def httpMetadata(self) -> dict[str, Any]:
        """``{"contentType": ...}``: the platform's keys (raydo's ``http_metadata`` has
        ``content_type``)."""
        return {_camel(k): v for k, v in self._object.http_metadata.items()}

    async def arrayBuffer(self) -> bytes:
        return await self._body().read()

    bytes = arrayBuffer

    async def blob(self) -> Any:
        from ._http import Blob

        body = self._body()
        return Blob([await body.read()], type=body.http_metadata.get("content_type", ""))

    @property
    def bodyUsed(self) -> bool:
        return bool(self._body().body_used)

    def _body(self) -> R2ObjectBody:
        if not isinstance(self._object, R2ObjectBody):
            raise TypeError(f"{self._object.key!r} came from head(): it has no body")
        return self._object

    def __repr__(self) -> str:
        return repr(self._object)


class R2ObjectsFace:
    """A ``list`` page: ``objects`` (each an :class:`R2ObjectFace`), ``truncated``, ``cursor``,
    ``delimitedPrefixes``."""

    def __init__(self, page: R2Objects) -> None:
        self.objects = [R2ObjectFace(o) for o in page.objects]
        self.truncated = page.truncated
        self.cursor = page.cursor
        self.delimitedPrefixes = list(page.delimited_prefixes)
        self.delimited_prefixes = self.delimitedPrefixes


def _camel(name: str) -> str:
    """``content_type`` -> ``contentType``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _http_metadata(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``options`` with the keys of its ``httpMetadata`` mapping in snake_case."""
    for name in ("httpMetadata", "http_metadata"):
        given = options.get(name)
        if isinstance(given, Mapping):
            renamed = {snake(k) if isinstance(k, str) else k: v for k, v in given.items()}
            return {**options, name: renamed}
    return options


def _r2(result: Any) -> Any:
    if isinstance(result, R2Object):
        return R2ObjectFace(result)
    if isinstance(result, R2Objects):
        return R2ObjectsFace(result)
    return result


class R2Face(BindingFace):
    """``env.FILES``: what ``get``, ``head``, ``put`` and ``list`` return reads with the
    platform's names (:class:`R2ObjectFace`)."""

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return _r2(await call_with_options(self._binding.get, args, kwargs))

    async def head(self, *args: Any, **kwargs: Any) -> Any:
        return _r2(await call_with_options(self._binding.head, args, kwargs))

    async def put(self, *args: Any, **kwargs: Any) -> Any:
        """``put(key, value, {"httpMetadata": {"contentType": ...}, "customMetadata": ...})``:
        ``httpMetadata``'s keys are renamed too (``customMetadata``'s are the user's own)."""
        if args and isinstance(args[-1], Mapping):
            args = (*args[:-1], _http_metadata(args[-1]))
        return _r2(await call_with_options(self._binding.put, args, _http_metadata(kwargs)))

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        return _r2(await call_with_options(self._binding.list, args, kwargs))


def binding_face(binding: Any) -> BindingFace:
    """The platform's face of one of raydo's bindings."""
    if isinstance(binding, D1Database):
        return D1Face(binding)
    if isinstance(binding, Queue):
        return QueueFace(binding)
    if isinstance(binding, KVNamespace):
        return KVFace(binding)
    if isinstance(binding, R2Bucket):
        return R2Face(binding)
    return BindingFace(binding)
