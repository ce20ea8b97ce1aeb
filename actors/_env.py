"""``env``: the bindings an app and its objects reach by name (``env.ROOM``, ``env.DB``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._spec import PlatformSpec, RuntimeSpec

if TYPE_CHECKING:
    from ._namespace import Namespace


class Env:
    """Bindings by name, as attributes; a missing one raises an error listing those that exist."""

    def __init__(self, bindings: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_bindings", dict(bindings))

    def __getattr__(self, name: str) -> Any:
        bindings: dict[str, Any] = object.__getattribute__(self, "_bindings")
        try:
            return bindings[name]
        except KeyError:
            known = ", ".join(sorted(bindings)) or "none"
            raise AttributeError(f"env has no binding {name!r} (bindings: {known})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("env is read-only")

    def __dir__(self) -> list[str]:
        return sorted(object.__getattribute__(self, "_bindings"))

    def __contains__(self, name: str) -> bool:
        return name in object.__getattribute__(self, "_bindings")


def env_bindings(env: Env) -> dict[str, Any]:
    """Every binding of an env by name (a copy)."""
    return dict(object.__getattribute__(env, "_bindings"))


class PlatformContext:
    """What a platform binding's factory is given: its config entry and the namespaces
    (internal ones included) that its code reaches its objects through."""

    def __init__(self, spec: PlatformSpec, runtime: RuntimeSpec, namespaces: Mapping[str, Any]):
        self.name = spec.name
        self.options: dict[str, Any] = dict(spec.options)
        self.runtime = runtime
        self._namespaces = namespaces

    def namespace(self, name: str) -> Namespace:
        """The namespace of a Durable Object binding, internal or not."""
        try:
            namespace: Namespace = self._namespaces[name]
        except KeyError:
            raise KeyError(f"platform binding {self.name}: no object binding {name!r}") from None
        return namespace


def namespaces_env(placement: Any) -> Env:
    """The env of a placement's app, in this order: one :class:`Namespace` per Durable Object
    binding (internal ones are kept out of ``env``), then each platform binding made by its
    factory."""
    from ._loading import import_from_app
    from ._namespace import Namespace

    runtime: RuntimeSpec = placement.spec
    namespaces = {b.name: Namespace(b, placement) for b in runtime.bindings}
    bindings: dict[str, Any] = {
        b.name: namespaces[b.name] for b in runtime.bindings if not b.internal
    }
    for platform in runtime.platform:
        factory = import_from_app(runtime.app_root, platform.factory)
        bindings[platform.name] = factory(PlatformContext(platform, runtime, namespaces))
    return Env(bindings)
