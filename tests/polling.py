"""Waiting in tests for something that happens on its own time (a close, an alarm, a restart)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


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
        await anyio.sleep(0.05)


def as_async(fn: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """``fn`` as a coroutine function, to ``poll`` something that needs no awaiting."""

    async def call() -> T:
        return fn()

    return call
