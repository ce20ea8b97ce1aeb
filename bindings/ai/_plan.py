"""What ``[ai]`` adds to an app: ``env.<binding>`` (``env.AI``), and the model names it serves.

An embedding model's folder is the one ``[ai.models]`` maps its name to, else
``<models_dir>/<last part of the name>`` (``models/bge-small-en-v1.5`` for
``@cf/baai/bge-small-en-v1.5``) when that folder exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from raydo.actors import PlatformContext, PlatformSpec
from raydo.bindings import Plan

from ._batcher import PoolSettings
from ._client import Ai
from ._runner import EmbeddingRunner, LocalRunner, PoolRunner
from ._text import TextClient, TextEndpoint
from ._types import EMBEDDING_MODELS


def plan(options: Mapping[str, Any] | None) -> Plan:
    """``env.<binding>`` when the app has an ``[ai]`` table."""
    if options is None:
        return Plan()
    return Plan(
        platform=[
            PlatformSpec(str(options["binding"]), "raydo.bindings.ai:ai_binding", dict(options))
        ]
    )


def model_folders(options: Mapping[str, Any]) -> dict[str, Path]:
    """Each embedding model the config serves, with its folder (absolute, as the config has
    resolved them)."""
    folders: dict[str, Path] = {}
    models_dir = options.get("models_dir")
    if models_dir is not None:
        for name in EMBEDDING_MODELS:
            folder = Path(str(models_dir)) / name.rsplit("/", 1)[-1]
            if folder.is_dir():
                folders[name] = folder
    for name, folder in dict(options.get("models", {})).items():
        folders[str(name)] = Path(str(folder))
    return folders


def missing_folders(options: Mapping[str, Any]) -> dict[str, Path]:
    """The Workers AI embedding models whose folder under ``models_dir`` does not exist (yet):
    a call to one says where to put it."""
    models_dir = options.get("models_dir")
    if models_dir is None:
        return {}
    served = model_folders(options)
    return {
        name: Path(str(models_dir)) / name.rsplit("/", 1)[-1]
        for name in EMBEDDING_MODELS
        if name not in served
    }


def ai_binding(ctx: PlatformContext) -> Ai:
    """``env.AI`` in this process. Loads nothing until the first call: then in this process
    (in-process placement), or in the model's pool of service actors (on Ray)."""
    options = ctx.options
    folders = model_folders(options)
    pools = {model: PoolSettings.for_model(options, model) for model in folders}
    runner: EmbeddingRunner
    if ctx.services is None:
        runner = LocalRunner(folders, {model: pool.batching for model, pool in pools.items()})
    else:
        runner = PoolRunner(ctx.services, folders, pools)
    endpoint = TextEndpoint.from_options(options.get("text"))
    text = TextClient(endpoint) if endpoint else None
    return Ai(folders, runner, text, missing=missing_folders(options))
