"""The gateway's front door holds every connection to a bound: the request target (414), the
head's size (431), the head's and the body's time (408, close), and how many connections one
process keeps (503). Raw sockets, since a well-behaved client library never sends these."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from raydo.gateway.testing import TestApp, start_app
from tests.cluster import REPO, copy_app


def counter_with_limits(tmp_path: Path, **limits: int) -> Path:
    app_dir = copy_app(REPO / "examples" / "counter", tmp_path)
    table = "\n".join(f"{key} = {value}" for key, value in limits.items())
    with (app_dir / "raydo.toml").open("a") as config:
        config.write(f"\n[limits]\n{table}\n")
    return app_dir


@asynccontextmanager
async def served(app_dir: Path) -> AsyncIterator[tuple[TestApp, int]]:
    async with start_app(app_dir) as app:
        yield app, int(app.url.rsplit(":", 1)[1])


async def read_all(reader: asyncio.StreamReader, timeout: float = 15) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


def status_and_json(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def run(test: Callable[[], object]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


def test_a_long_target_is_414_and_a_long_head_431(tmp_path: Path) -> None:
    app_dir = counter_with_limits(tmp_path, http_target_bytes=1024, http_header_bytes=4096)

    async def main() -> None:
        async with served(app_dir) as (app, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nhost: x\r\n\r\n")
            status, body = status_and_json(await read_all(reader))
            assert status == 414
            assert "http_target_bytes" in str(body["error"])
            writer.close()

            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"b" * 5000 + b"\r\n\r\n")
            status, body = status_and_json(await read_all(reader))
            assert status == 431
            assert "http_header_bytes" in str(body["error"])
            writer.close()

            # The app is untouched by both, and still answers.
            assert (await app.http.post("/counter/door/increment")).status_code == 200

    run(main)


def test_a_header_without_end_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    app_dir = counter_with_limits(tmp_path, http_header_bytes=64 * 1024)

    async def main() -> None:
        async with served(app_dir) as (_, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answer = asyncio.ensure_future(read_all(reader))
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nx-endless: ")
            sent = 0
            chunk = b"c" * 65536
            try:
                for _ in range(2048):  # up to 128 MiB, unless the gateway stops it
                    if answer.done():
                        break
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
            except (ConnectionResetError, BrokenPipeError):
                pass
            assert status_and_json(await answer)[0] == 431
            # Refused after about the limit, not after the whole 128 MiB.
            assert sent < 32 * 1024 * 1024
            writer.close()

    run(main)


def test_a_stalled_head_is_408_and_a_silent_connection_is_closed(tmp_path: Path) -> None:
    app_dir = counter_with_limits(tmp_path, http_header_seconds=1)

    async def main() -> None:
        async with served(app_dir) as (app, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /counter/x/increment HTTP/1.1\r\nhost: x\r\n")
            status, body = status_and_json(await read_all(reader))
            assert status == 408
            assert "http_header_seconds" in str(body["error"])
            writer.close()

            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await read_all(reader) == b""  # closed, nothing said: nothing was asked
            writer.close()

            # A connection that asks in time is served, and kept alive across requests.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(3):
                writer.write(b"POST /counter/y/increment HTTP/1.1\r\nhost: x\r\n\r\n")
                line = await asyncio.wait_for(reader.readline(), 15)
                assert line.startswith(b"HTTP/1.1 200")
                length = 0
                while (header := await reader.readline()) != b"\r\n":
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                await reader.readexactly(length)
            writer.close()
            assert (await app.http.get("/counter/x")).json()["value"] == 0

    run(main)


def test_a_stalled_body_ends_its_connection(tmp_path: Path) -> None:
    app_dir = counter_with_limits(tmp_path, http_body_idle_seconds=1)

    async def main() -> None:
        async with served(app_dir) as (app, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /counter/z/fetch HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n"
                + b"0123456789"
            )
            await writer.drain()
            await read_all(reader)  # returns once the gateway closed the connection
            writer.close()
            assert (await app.http.get("/counter/z")).json()["value"] == 0

    run(main)


def test_past_the_connection_cap_a_new_connection_is_503(tmp_path: Path) -> None:
    app_dir = counter_with_limits(tmp_path, connections=4)

    async def main() -> None:
        async with served(app_dir) as (app, port):
            await app.http.aclose()  # its kept-alive connection would count
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
            await asyncio.sleep(0.2)  # let the server see all four
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status, body = status_and_json(await read_all(reader))
            assert status == 503
            assert "limit connections" in str(body["error"])
            writer.close()
            for _, held_writer in held:
                held_writer.close()
            await asyncio.sleep(0.2)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /counter/c/increment HTTP/1.1\r\nhost: x\r\n\r\n")
            line = await asyncio.wait_for(reader.readline(), 15)
            assert line.startswith(b"HTTP/1.1 200")
            writer.close()

    run(main)
