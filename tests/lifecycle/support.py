"""Helpers shared by the alarm and lifecycle tests."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app

T = TypeVar("T")


@contextlib.asynccontextmanager
async def started(app_dir: Path, placement: dict[str, Any]) -> AsyncIterator[TestApp]:
    async with start_app(app_dir, **placement, storage=CONFIGURED_STORAGE) as app:
        yield app


def add_binding(app_dir: Path, name: str, class_name: str, **extra: Any) -> None:
    toml = app_dir / "raydo.toml"
    lines = ["", "[[durable_objects.bindings]]", f'name = "{name}"', f'class_name = "{class_name}"']
    lines += [f"{key} = {value!r}" for key, value in {"shards": 1, **extra}.items()]
    toml.write_text(toml.read_text() + "\n".join(lines) + "\n")


def now_ms() -> float:
    return time.time() * 1000


def set_clock_option(app_dir: Path, key: str, value: Any) -> None:
    """Add ``key = value`` to the CLOCK binding of a copied app."""
    toml = app_dir / "raydo.toml"
    anchor = 'class_name = "objects:Clock"'
    text = toml.read_text()
    assert anchor in text
    toml.write_text(text.replace(anchor, f"{anchor}\n{key} = {value!r}"))
