"""Key-value consistency across processes: two ``raydo serve`` gateways on the session's Ray,
the namespace's object in a Ray host. The test app reads with ``cache_ttl = 2`` and accepts
expirations 1 s ahead (``min_ttl = 1``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.cluster import Server

Gateway = Callable[..., Server]


async def read(client: httpx.AsyncClient, key: str, **params: Any) -> dict[str, Any]:
    reply = await client.get("/kv", params={"key": key, **params})
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


async def test_a_write_reaches_another_gateway_within_its_cache_ttl(
    app_copy: Callable[[str], Path], gateway: Gateway
) -> None:
    app = app_copy("kv")
    writer_server, reader_server = gateway(app), gateway(app)

    async with (
        httpx.AsyncClient(base_url=writer_server.url, timeout=60) as writer,
        httpx.AsyncClient(base_url=reader_server.url, timeout=60) as reader,
    ):
        assert (await writer.put("/kv", params={"key": "k"}, content=b"v1")).status_code == 200
        first = await read(reader, "k", cache_ttl="300")
        assert first["value"] == "v1" and first["cache_status"] == "MISS"
        assert first["pid"] != (await read(writer, "k"))["pid"]

        await writer.put("/kv", params={"key": "k"}, content=b"v2")
        # The writing process reads its own write at once, from its cache.
        own = await read(writer, "k", cache_ttl="300")
        assert own["value"] == "v2" and own["cache_status"] == "HIT"
        # The other process may serve what it fetched, as long as the read accepts its age.
        stale = await read(reader, "k", cache_ttl="300")
        assert stale["value"] == "v1" and stale["cache_status"] == "HIT"
        # list() is never cached: it sees the write at once, from either process.
        listing = (await reader.get("/list")).json()
        assert [k["name"] for k in listing["keys"]] == ["k"]
        # Past the namespace's cache_ttl (2 s), a read goes to the owning object.
        await asyncio.sleep(2.0)
        fresh = await read(reader, "k")
        assert fresh["value"] == "v2" and fresh["cache_status"] == "MISS"

        # Deletes likewise: at once in the writer, within cache_ttl in the other.
        await writer.delete("/kv", params={"key": "k"})
        assert (await read(writer, "k", cache_ttl="300"))["value"] is None
        assert (await read(reader, "k", cache_ttl="300"))["value"] == "v2"
        await asyncio.sleep(2.0)
        assert (await read(reader, "k"))["value"] is None

        # Expiry holds in every process, cached answers included.
        await writer.put("/kv", params={"key": "brief", "ttl": "1"}, content=b"b")
        expires = time.time() + 1
        cached = await read(reader, "brief", cache_ttl="300")
        assert cached["value"] == "b"
        await asyncio.sleep(max(0.0, expires + 0.1 - time.time()))
        assert (await read(reader, "brief", cache_ttl="300"))["value"] is None
        assert (await read(writer, "brief", cache_ttl="300"))["value"] is None
        listing = (await reader.get("/list")).json()
        assert "brief" not in [k["name"] for k in listing["keys"]]

        # An object in a Ray host has its own cache and sees the gateways' writes.
        await writer.put("/kv", params={"key": "shared"}, content=b"s")
        reply = await reader.get("/object", params={"key": "shared"})
        assert reply.json() == {"value": "s"}
        await reader.put("/object", params={"key": "from-host"}, content=b"h")
        assert (await read(writer, "from-host"))["value"] == "h"
