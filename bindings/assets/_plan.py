"""What ``[assets]`` adds to an app: with a ``binding``, ``env.<BINDING>`` (an
:class:`AssetServer` in every process); the gateway serves the folder in front of the app
either way (see ``gateway/app.py``)."""

from __future__ import annotations

from collections.abc import Mapping

from raydo.actors import PlatformContext, PlatformSpec
from raydo.bindings import Plan

from ._server import AssetServer, AssetSettings


def plan(assets: Mapping[str, object] | None) -> Plan:
    if not assets or not assets.get("binding"):
        return Plan()
    spec = PlatformSpec(str(assets["binding"]), "raydo.bindings.assets:make_assets", dict(assets))
    return Plan(platform=[spec])


def make_assets(ctx: PlatformContext) -> AssetServer:
    """``env.ASSETS`` in this process."""
    return AssetServer(AssetSettings.from_options(ctx.options))
