"""WebSocket clients for the tests: connect with bounded waits, ask and receive, see a close,
and see whether an object is live in its host."""

from __future__ import annotations

import asyncio
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from raydo.actors.placement import LocalPlacement
from raydo.gateway.testing import TestApp
from tests.hosts import host_actor
from tests.polling import poll


def connect(url: str, **options: Any) -> websockets.connect:
    return websockets.connect(url, open_timeout=30, close_timeout=5, **options)


async def recv(ws: ClientConnection, timeout: float = 10.0) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), timeout)


async def ask(ws: ClientConnection, message: str | bytes, timeout: float = 10.0) -> str | bytes:
    await ws.send(message)
    return await recv(ws, timeout)


async def closed_by_server(ws: ClientConnection, timeout: float = 10.0) -> ConnectionClosed:
    """Wait for the connection to end; fail if a message arrives first."""
    try:
        message = await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as exc:
        return exc
    raise AssertionError(f"expected the connection to close, got a message: {message!r:.80}")


async def is_live(app: TestApp, binding: str, name: str) -> bool:
    """Whether the object has an instance in its host right now (not evicted)."""
    spec = app.gateway.spec
    hex_id = getattr(app.env, binding).id_from_name(name).hex
    key = spec.host_for(spec.binding(binding), hex_id)
    placement = app.gateway.placement
    if isinstance(placement, LocalPlacement):
        host = placement.hosts.get(key)
        return host is not None and hex_id in host.live_ids()
    return hex_id in await host_actor(spec, binding, hex_id).live_ids.remote()


async def evicted(app: TestApp, binding: str, name: str) -> None:
    assert await app.evict(binding, name)
    await poll(lambda: is_live(app, binding, name), lambda live: not live)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])
