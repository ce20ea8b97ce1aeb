"""The env of an app: its namespaces, then the platform bindings their factories make."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._env import Env
from ._loading import import_from_app
from ._namespace import Namespace
from ._placement import Placement
from ._spec import PlatformSpec, RuntimeSpec


class PlatformContext:
    """What a platform binding's factory is given: its config entry and the namespaces
    (internal ones included) that its code reaches its objects through."""

    def __init__(
        self, spec: PlatformSpec, runtime: RuntimeSpec, namespaces: Mapping[str, Namespace]
    ) -> None:
        self.name = spec.name
        self.options: dict[str, Any] = dict(spec.options)
        self.runtime = runtime
        self._namespaces = namespaces

    def namespace(self, name: str) -> Namespace:
        """The namespace of a Durable Object binding, internal or not."""
        try:
            return self._namespaces[name]
        except KeyError:
            raise KeyError(f"platform binding {self.name}: no object binding {name!r}") from None


def namespaces_env(placement: Placement) -> Env:
    """The env of a placement's app, in this order: one :class:`Namespace` per Durable Object
    binding (internal ones are kept out of ``env``), then each platform binding made by its
    factory."""
    runtime = placement.spec
    namespaces = {b.name: Namespace(b, placement) for b in runtime.bindings}
    bindings: dict[str, Any] = {
        b.name: namespaces[b.name] for b in runtime.bindings if not b.internal
    }
    for platform in runtime.platform:
        factory = import_from_app(runtime.app_root, platform.factory)
        bindings[platform.name] = factory(PlatformContext(platform, runtime, namespaces))
    return Env(bindings)
