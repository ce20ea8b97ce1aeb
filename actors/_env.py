"""``env``: the bindings an app and its objects reach by name (``env.ROOM``, ``env.DB``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
