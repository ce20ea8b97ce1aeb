"""Request bodies that stream into an object: a 1 GB upload through an object into the blob
store in bounded memory, and the streamed-body limits, each breach an error on both sides."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import psutil

from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from tests.placements import Placement
from tests.streams.conftest import MakeApp

MiB = 1024 * 1024


async def host_process(app: TestApp, placement: Placement, name: str) -> psutil.Process:
    """The process of the host that holds object ``name`` (this one, in process)."""
    if not placement:
        return psutil.Process()
    from tests.hosts import host_actor

    object_hex = str(app.env.STREAMER.id_from_name(name))
    pid = await host_actor(app.gateway.spec, "STREAMER", object_hex).pid.remote()
    return psutil.Process(pid)


class PeakRss:
    """The highest RSS of some processes, sampled every 50 ms while it runs."""

    def __init__(self, *processes: psutil.Process) -> None:
        self.processes = processes
        self.peaks = [p.memory_info().rss for p in processes]
        self._task = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        while True:
            for i, process in enumerate(self.processes):
                self.peaks[i] = max(self.peaks[i], process.memory_info().rss)
            await asyncio.sleep(0.05)

    async def stop(self) -> list[int]:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return self.peaks


async def test_a_1_gb_upload_streams_through_an_object_into_the_blob_store(
    app: TestApp, name: str, placement: Placement
) -> None:
    total = 1024 * MiB
    block = os.urandom(MiB)

    async def body() -> AsyncIterator[bytes]:
        for i in range(total // MiB):
            yield i.to_bytes(8, "big") + block[8:]

    expected = hashlib.md5()
    async for chunk in body():
        expected.update(chunk)
    warm = await app.http.put(f"/o/{name}/upload", params={"key": "warm"}, content=body_of(4))
    assert warm.status_code == 200, warm.text
    processes = [psutil.Process()]
    host = await host_process(app, placement, name)
    if host.pid != processes[0].pid:
        processes.append(host)
    idle = [p.memory_info().rss for p in processes]
    peak = PeakRss(*processes)
    async with httpx.AsyncClient(base_url=app.url, timeout=600) as client:
        stored = await client.put(f"/o/{name}/upload", params={"key": "big"}, content=body())
    peaks = await peak.stop()
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"size": total, "etag": expected.hexdigest()}
    for process, before, highest in zip(processes, idle, peaks, strict=True):
        growth = highest - before
        assert growth < 64 * MiB, f"pid {process.pid} grew by {growth / MiB:.0f} MiB"
    found = await app.env.BUCKET.head("big")
    assert found is not None and found.size == total


def body_of(mib: int) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(mib):
            yield b"w" * MiB

    return chunks()


async def test_a_streamed_body_past_stream_bytes_is_an_error_to_both_sides(
    streams_dir: MakeApp, placement: Placement, name: str
) -> None:
    app_dir = streams_dir("[limits]\nstream_bytes = 3000000")
    async with start_app(app_dir, **placement, storage=CONFIGURED_STORAGE) as app:
        # The object reading it gets the error naming the limit...
        caught = await app.http.post(f"/o/{name}/count?catch=1", content=body_of(5))
        assert caught.status_code == 400
        assert "stream_bytes" in caught.json()["read_error"]
        # ... and one that lets it escape answers the client 413 naming it.
        refused = await app.http.post(f"/o/{name}/count", content=body_of(5))
        assert refused.status_code == 413 and refused.json()["limit"] == "stream_bytes"
        # Declared past it, the gateway refuses the body before any app code runs.
        declared = await app.http.post(
            f"/o/{name}/count", content=b"d" * 3_000_001, headers={"content-length": "3000001"}
        )
        assert declared.status_code == 413 and declared.json()["limit"] == "stream_bytes"
        # A body within it passes; the app reading a body itself stays under request_bytes.
        assert (await app.http.post(f"/o/{name}/count", content=body_of(2))).json() == {
            "size": 2 * MiB
        }


async def test_a_stalled_upload_is_an_idle_breach_on_both_sides(
    streams_dir: MakeApp, placement: Placement, name: str
) -> None:
    app_dir = streams_dir("[limits]\nstream_idle_seconds = 1")
    async with start_app(app_dir, **placement, storage=CONFIGURED_STORAGE) as app:
        # A raw client: it sends the head and one chunk, then stalls, reading meanwhile.
        port = int(app.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        chunk = b"s" * 300_000
        writer.write(
            f"POST /o/{name}/count?catch=1 HTTP/1.1\r\nhost: t\r\n"
            "transfer-encoding: chunked\r\n\r\n".encode()
            + f"{len(chunk):x}\r\n".encode()
            + chunk
            + b"\r\n"
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 30)
        writer.close()
        await writer.wait_closed()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), answer
        assert b"stream_idle_seconds" in body
        # The object goes on answering.
        assert (await app.http.post(f"/o/{name}/count", content=body_of(1))).json() == {"size": MiB}


async def test_the_app_reading_a_body_itself_stays_under_request_bytes(app: TestApp) -> None:
    reply = await app.http.post("/here", content=body_of(9))
    assert reply.status_code == 413 and reply.json()["limit"] == "request_bytes"
    assert (await app.http.post("/here", content=body_of(1))).text == str(MiB)
