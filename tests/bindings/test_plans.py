"""Every kind of platform binding plans references that resolve: the internal object classes
and the ``env`` factories its plan names as strings import, from each subpackage."""

from __future__ import annotations

from pathlib import Path

import pytest

from raydo.actors import DurableObject, import_from_app
from raydo.gateway.config import load_config
from raydo.gateway.runtime import platform_plan

APPS = Path(__file__).resolve().parent.parent / "apps"


@pytest.mark.parametrize("app", ["d1", "kv", "queues", "r2"])
def test_a_plans_class_names_and_factories_import(app: str) -> None:
    plan = platform_plan(load_config(APPS / app))
    assert plan.platform, "every kind adds env bindings"
    for spec in plan.objects:
        cls = import_from_app(str(APPS / app), spec.class_name)
        assert isinstance(cls, type) and issubclass(cls, DurableObject), spec.class_name
        assert spec.internal and spec.name.startswith("_")
    for platform in plan.platform:
        assert callable(import_from_app(str(APPS / app), platform.factory)), platform.factory
