"""Helpers shared by the alarm and lifecycle tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from raydo.gateway.config import load_config
from raydo.gateway.runtime import runtime_spec
from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app

T = TypeVar("T")


def kill_hosts(app_dir: Path) -> None:
    from raydo.actors._ray import kill_hosts as kill

    kill(runtime_spec(load_config(app_dir)))


@contextlib.asynccontextmanager
async def started(app_dir: Path, placement: dict[str, Any]) -> AsyncIterator[TestApp]:
    async with start_app(app_dir, **placement, storage=CONFIGURED_STORAGE) as app:
        yield app


def run(scenario: Coroutine[Any, Any, None], timeout: float = 60.0) -> None:
    asyncio.run(asyncio.wait_for(scenario, timeout))


def add_binding(app_dir: Path, name: str, class_name: str, **extra: Any) -> None:
    toml = app_dir / "raydo.toml"
    lines = ["", "[[durable_objects.bindings]]", f'name = "{name}"', f'class_name = "{class_name}"']
    lines += [f"{key} = {value!r}" for key, value in {"shards": 1, **extra}.items()]
    toml.write_text(toml.read_text() + "\n".join(lines) + "\n")


async def poll(
    fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 10.0
) -> T:
    """Fetch until ``done(value)``; fail with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"not reached in {timeout} s; last value: {value!r}"
        await asyncio.sleep(0.05)


def as_async(fn: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """``fn`` as a coroutine function, to ``poll`` something that needs no awaiting."""

    async def call() -> T:
        return fn()

    return call


def now_ms() -> float:
    return time.time() * 1000


def set_clock_option(app_dir: Path, key: str, value: Any) -> None:
    """Add ``key = value`` to the CLOCK binding of a copied app."""
    toml = app_dir / "raydo.toml"
    anchor = 'class_name = "objects:Clock"'
    text = toml.read_text()
    assert anchor in text
    toml.write_text(text.replace(anchor, f"{anchor}\n{key} = {value!r}"))
