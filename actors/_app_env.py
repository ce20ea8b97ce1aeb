"""The envs of an app: its namespaces, then the platform bindings their factories make; the
internal ones go only into the env of platform objects (see :mod:`actors._env`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._env import Env, platform_env
from ._loading import import_from_app
from ._namespace import Namespace
from ._placement import Placement
from ._services import Services
from ._spec import PlatformSpec, RuntimeSpec


class PlatformContext:
    """What a platform binding's factory is given: its config entry and the namespaces
    (internal ones included) that its code reaches its objects through."""

    def __init__(
        self,
        spec: PlatformSpec,
        runtime: RuntimeSpec,
        namespaces: Mapping[str, Namespace],
        services: Services | None = None,
    ) -> None:
        self.name = spec.name
        self.options: dict[str, Any] = dict(spec.options)
        self.runtime = runtime
        self._namespaces = namespaces
        self.services = services
        """Where service actors run (on Ray); None in process, where a binding runs its
        services' objects itself."""

    def namespace(self, name: str) -> Namespace:
        """The namespace of a Durable Object binding, internal or not."""
        try:
            return self._namespaces[name]
        except KeyError:
            raise KeyError(f"platform binding {self.name}: no object binding {name!r}") from None


def namespaces_env(placement: Placement) -> tuple[Env, Env]:
    """The app's env and its platform objects' env, made in this order: one
    :class:`Namespace` per Durable Object binding, then each platform binding by its factory.
    Internal bindings of either kind go only into the second."""
    runtime = placement.spec
    namespaces = {b.name: Namespace(b, placement) for b in runtime.bindings}
    public: dict[str, Any] = {}
    internal: dict[str, Any] = {}
    for binding in runtime.bindings:
        (internal if binding.internal else public)[binding.name] = namespaces[binding.name]
    for platform in runtime.platform:
        factory = import_from_app(runtime.app_root, platform.factory)
        made = factory(PlatformContext(platform, runtime, namespaces, placement.services))
        (internal if platform.internal else public)[platform.name] = made
    env = Env(public)
    return env, platform_env(env, internal)
