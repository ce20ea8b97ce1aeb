"""``env``: the bindings an app and its objects reach by name (``env.ROOM``, ``env.DB``).

An app has two: the one its handlers and objects see, with only the bindings its config
names, and the one raydo's own platform objects get, which adds the internal bindings (a
queue's broker) those objects reach each other through. Nothing reachable from the first
leads to the second; :func:`public_env` leads from the second to the first, for what a
platform object hands to user code (a queue consumer's ``env``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Env:
    """Bindings by name, as attributes; a missing one raises an error listing those that exist."""

    def __init__(self, bindings: Mapping[str, Any], *, public: Env | None = None) -> None:
        object.__setattr__(self, "_bindings", dict(bindings))
        object.__setattr__(self, "_public", public)

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


def platform_env(public: Env, internal: Mapping[str, Any]) -> Env:
    """The env of platform objects: every binding of ``public``, plus ``internal`` ones."""
    return Env({**env_bindings(public), **internal}, public=public)


def public_env(env: Env) -> Env:
    """The env user code may see: ``env`` itself, or the app's for a :func:`platform_env`."""
    public: Env | None = object.__getattribute__(env, "_public")
    return env if public is None else public


def env_bindings(env: Env) -> dict[str, Any]:
    """Every binding of an env by name (a copy)."""
    return dict(object.__getattribute__(env, "_bindings"))
