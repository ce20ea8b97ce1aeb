"""Key-value namespaces over real HTTP (in-process hosts): reads, writes, metadata, expiry,
listing, the cache's local guarantees, and every limit and malformed input."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.actors import ObjectError
from raydo.bindings.kv import KV_BINDING, KVNamespace, ValueChanged
from raydo.bindings.kv import _store as kv_object
from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import TestApp, start_app
from raydo.storage import LimitExceeded, layout
from raydo.storage.limits import MiB


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("kv")


async def put(app: TestApp, key: str, body: bytes | str, **params: Any) -> httpx.Response:
    return await app.http.put("/kv", params={"key": key, **params}, content=body)


async def get(app: TestApp, key: str, **params: Any) -> dict[str, Any]:
    reply = await app.http.get("/kv", params={"key": key, **params})
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def rows_in_file(app: TestApp, kv: KVNamespace, table: str = "kv_entries") -> int:
    """Rows physically in the namespace's SQLite file (read beside the running app)."""
    path = layout.object_file(app.config.storage, KV_BINDING, str(kv.object_id))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        count: int = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


async def test_text_json_and_bytes_round_trip_with_metadata(app: TestApp) -> None:
    reply = await put(app, "greeting", "héllo", metadata=json.dumps({"lang": "fr"}))
    assert reply.json()["ok"] is True
    found = await get(app, "greeting")
    assert found["value"] == "héllo" and found["metadata"] == {"lang": "fr"}
    await put(app, "doc", json.dumps({"a": [1, 2]}))
    assert (await get(app, "doc", type="json"))["value"] == {"a": [1, 2]}
    raw = await app.http.get("/kv", params={"key": "greeting", "type": "bytes"})
    assert raw.content == "héllo".encode()
    missing = await get(app, "nothing")
    assert missing["value"] is None and missing["metadata"] is None
    assert (await app.http.delete("/kv", params={"key": "greeting"})).status_code == 200
    assert (await get(app, "greeting"))["value"] is None
    # A write without metadata drops what the key had.
    await put(app, "doc", "plain")
    assert (await get(app, "doc"))["metadata"] is None
    # Deleting a missing key is fine.
    assert (await app.http.delete("/kv", params={"key": "never"})).status_code == 200


async def test_empty_and_binary_values(app: TestApp) -> None:
    kv: KVNamespace = app.env.CONFIG
    await kv.put("empty", b"")
    assert await kv.get("empty", "bytes", cache_ttl=1) == b""
    assert await kv.get("empty") == ""
    await kv.put("binary", b"\xff\xfe\x00")
    assert await kv.get("binary", "bytes") == b"\xff\xfe\x00"
    with pytest.raises(ValueError, match="not UTF-8 text"):
        await kv.get("binary")
    reply = await app.http.get("/kv", params={"key": "binary"})
    assert reply.status_code == 400 and "type='bytes'" in reply.json()["message"]
    await kv.put("bad-json", "{not json")
    with pytest.raises(ValueError):
        await kv.get("bad-json", "json")
    await kv.put("view", memoryview(b"abc"))
    assert await kv.get("view") == "abc"


async def test_values_larger_than_one_message_travel_in_segments(app: TestApp) -> None:
    """The app's messages are 256 KiB and its SQL blobs 64 KiB: a 1 MiB value crosses both."""

    value = bytes(range(256)) * 4096 + b"tail"
    assert (await put(app, "big", value)).status_code == 200
    # The object's answer (cache_ttl 0 on NOCACHE is not needed: read a fresh key
    # through a second namespace path) and the cache's answer agree.
    reply = await app.http.get("/kv", params={"key": "big", "type": "bytes"})
    assert reply.content == value and reply.headers["x-cache"] == "HIT"
    kv: KVNamespace = app.env.NOCACHE
    for size in (0, 1, 65535, 65536, 65537, 262144, 3 * 262144 + 5):
        data = bytes([size % 251]) * size
        await kv.put(f"size-{size}", data)
        got = await kv.get_with_metadata(f"size-{size}", "bytes")
        assert got.value == data and got.cache_status == "MISS"


async def test_the_largest_value_round_trips_and_one_byte_more_is_refused(app: TestApp) -> None:
    kv: KVNamespace = app.env.NOCACHE
    largest = b"x" * (25 * MiB)
    await kv.put("largest", largest, metadata={"n": 1})
    assert await kv.get("largest", "bytes") == largest
    with pytest.raises(LimitExceeded) as caught:
        await kv.put("largest", largest + b"y")
    assert caught.value.limit == "kv_value_bytes"
    got = await kv.get_with_metadata("largest", "bytes")
    assert got.value == largest and got.metadata == {"n": 1}  # nothing was written


async def test_own_writes_are_read_at_once_and_answers_are_cached(app: TestApp) -> None:
    first = await get(app, "k")
    assert first["value"] is None and first["cache_status"] == "MISS"
    # A missing key is cached too.
    assert (await get(app, "k"))["cache_status"] == "HIT"
    for n in range(20):
        await put(app, "k", str(n))
        found = await get(app, "k")
        assert found == {**found, "value": str(n), "cache_status": "HIT"}
    await app.http.delete("/kv", params={"key": "k"})
    assert (await get(app, "k"))["value"] is None
    # cache_ttl is a bound on age: a read that accepts nothing older than 0 s is not
    # allowed here (min_ttl 1), one that waits out the age goes to the object.
    await put(app, "k", "fresh")
    await asyncio.sleep(1.05)
    assert (await get(app, "k", cache_ttl=1))["cache_status"] == "MISS"
    # NOCACHE keeps nothing: every read asks the object.
    await put(app, "n", "v", ns="NOCACHE")
    assert (await get(app, "n", ns="NOCACHE"))["cache_status"] == "MISS"


async def test_concurrent_reads_never_bring_back_a_replaced_value(app: TestApp) -> None:
    """Reads started before this process's write may answer after it; the cache keeps the
    later version, so the next read sees the write."""

    kv: KVNamespace = app.env.CONFIG
    for n in range(10):
        tasks = [asyncio.ensure_future(kv.get("race", cache_ttl=1)) for _ in range(5)]
        await kv.put("race", str(n))
        await asyncio.gather(*tasks)
        assert await kv.get("race") == str(n)


async def test_a_value_read_in_segments_is_never_torn_by_a_write(app: TestApp) -> None:
    """A 1 MiB value takes five RPCs to read (256 KiB messages); a write landing between a
    read's segments makes the read start again, so it returns one whole value."""

    kv: KVNamespace = app.env.NOCACHE
    for n in range(3):
        big, small = bytes([n]) * MiB, f"small-{n}".encode()
        await kv.put("torn", big)
        reads = [asyncio.ensure_future(kv.get("torn", "bytes")) for _ in range(3)]
        await asyncio.sleep(0)  # the reads' first segments go out first
        await kv.put("torn", small)
        assert set(await asyncio.gather(*reads)) <= {big, small}
        assert await kv.get("torn", "bytes") == small


async def collect(stream: Any) -> bytes:
    return b"".join([piece async for piece in stream])


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_values_stream_in_and_out(app: TestApp) -> None:
    for name in ("CONFIG", "NOCACHE"):
        kv: KVNamespace = getattr(app.env, name)
        parts = [bytes([n]) * 100_000 for n in range(10)]  # 1,000,000 bytes
        await kv.put("streamed", pieces(*parts), metadata={"parts": 10})
        whole = b"".join(parts)
        assert await kv.get("streamed", "bytes") == whole
        found = await kv.get_with_metadata("streamed", "stream")
        assert found.metadata == {"parts": 10}
        assert await collect(found.value) == whole
        chunks: list[Any] = [b"a", b"", bytearray(b"b"), memoryview(b"c")]  # any bytes-like
        await kv.put("small", pieces(*chunks))
        assert await kv.get("small") == "abc"
        assert await collect(await kv.get("small", "stream")) == b"abc"
        await kv.put("none", pieces())
        assert await kv.get("none", "bytes") == b""
        assert await kv.get("missing", "stream") is None
    # Over HTTP: the handler passes request.stream() (a request streamed by the client).
    body = b"z" * 700_000
    reply = await app.http.put(
        "/kv", params={"key": "uploaded", "stream": "1"}, content=pieces(body)
    )
    assert reply.status_code == 200
    got = await app.http.get("/kv", params={"key": "uploaded", "type": "bytes"})
    assert got.content == body


async def test_a_stream_of_a_value_that_changes_says_so(app: TestApp) -> None:
    kv: KVNamespace = app.env.NOCACHE
    await kv.put("moving", b"m" * MiB)
    stream = await kv.get("moving", "stream")
    first = await anext(stream)
    assert first == b"m" * len(first) and len(first) < MiB
    await kv.put("moving", "replaced")
    with pytest.raises(ValueChanged, match="changed while it was streamed"):
        await collect(stream)
    assert await kv.get("moving") == "replaced"


async def test_streamed_values_are_held_to_the_limit(app: TestApp) -> None:
    kv: KVNamespace = app.env.CONFIG
    await kv.put("k", "before")
    endless = pieces(*([b"x" * MiB] * 26))
    with pytest.raises(LimitExceeded) as caught:
        await kv.put("k", endless)
    assert caught.value.limit == "kv_value_bytes"
    with pytest.raises(TypeError, match="yields bytes"):
        await kv.put("k", pieces(b"a", "b"))  # type: ignore[arg-type]
    assert await kv.get("k", cache_ttl=1) == "before"
    assert await app.env.NOCACHE.get("k") is None


async def test_a_put_that_fails_midway_discards_its_staged_segments(app: TestApp) -> None:
    """Whatever ends a multi-segment put before it finishes (its source raising, the size
    limit refusing it midway, the owning object refusing the put, the caller cancelled),
    the segments it staged are gone when the error arrives: none stay counted for an hour."""
    kv: KVNamespace = app.env.NOCACHE

    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 600_000  # two segments of the app's 240 KiB are staged at once
        raise ConnectionError("the client went away")

    with pytest.raises(ConnectionError):
        await kv.put("k", failing())
    assert rows_in_file(app, kv, "kv_staged") == 0

    with pytest.raises(LimitExceeded):
        await kv.put("k", pieces(*([b"y" * MiB] * 26)))
    assert rows_in_file(app, kv, "kv_staged") == 0

    # The owning object refuses the finishing put (bad metadata reaches it only through a
    # caller that skips the namespace's checks: here, a put whose size does not add up).
    stub = kv._namespace.get(kv.object_id)
    await stub.stage("by-hand", b"z" * 1000)
    with pytest.raises(ObjectError, match="arrived with"):
        await stub.put(b"k", b"tail", None, None, "by-hand", 5)
    assert rows_in_file(app, kv, "kv_staged") == 1  # refused and rolled back: still staged
    await stub.discard("by-hand")
    assert rows_in_file(app, kv, "kv_staged") == 0

    async def slow() -> AsyncIterator[bytes]:
        yield b"w" * 600_000
        await asyncio.Event().wait()  # a client that never sends the rest
        yield b""

    cancelled = asyncio.create_task(kv.put("k", slow()))
    while rows_in_file(app, kv, "kv_staged") == 0:
        await asyncio.sleep(0.01)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert rows_in_file(app, kv, "kv_staged") == 0
    assert await kv.get("k") is None and rows_in_file(app, kv) == 0


async def test_segments_a_dead_writer_left_are_swept(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments whose writer died before it could discard them are dropped by the object's
    alarm once they are older than ``STAGED_SECONDS`` (an hour; 1 s here)."""
    monkeypatch.setattr(kv_object, "STAGED_SECONDS", 1.0)

    async with start_app(app_dir) as app:
        kv: KVNamespace = app.env.CONFIG
        await kv._namespace.get(kv.object_id).stage("orphan", b"x" * 1000)
        assert rows_in_file(app, kv, "kv_staged") > 0
        deadline = time.monotonic() + 60
        while rows_in_file(app, kv, "kv_staged"):
            assert time.monotonic() < deadline, "the staged segments were never swept"
            await asyncio.sleep(0.2)
        assert rows_in_file(app, kv) == 0


async def test_objects_reach_the_namespace_through_their_env(app: TestApp) -> None:
    reply = await app.http.put("/object", params={"key": "from-object"}, content=b"v")
    assert reply.status_code == 200
    assert (await get(app, "from-object"))["value"] == "v"
    await put(app, "from-gateway", "g")
    reply = await app.http.get("/object", params={"key": "from-gateway"})
    assert reply.json() == {"value": "g"}


async def test_expired_keys_vanish_from_reads_and_lists_then_from_disk(app: TestApp) -> None:
    kv: KVNamespace = app.env.CONFIG
    before = time.time()
    assert (await put(app, "short", "s", ttl="1")).status_code == 200
    await kv.put("later", "l", expiration=before + 3600, metadata=[1])
    await kv.put("keep", "k")
    assert (await get(app, "short"))["value"] == "s"
    listed = {k.name: k for k in (await kv.list()).keys}
    assert before + 1 <= listed["short"].expiration <= time.time() + 1  # type: ignore[operator]
    assert listed["later"].expiration == before + 3600
    assert listed["later"].metadata == [1] and listed["keep"].expiration is None
    # the put's own clock set the expiration: on a busy machine it is well after `before`
    expires = listed["short"].expiration
    assert expires is not None
    await asyncio.sleep(max(0.0, expires + 0.1 - time.time()))
    # Gone from the cache's answer (it knows the expiration) and from the object's.
    assert (await get(app, "short"))["value"] is None
    assert (await get(app, "short", ns="NOCACHE"))["value"] is None
    assert await kv.get("short", cache_ttl=1) is None
    assert [k.name for k in (await kv.list()).keys] == ["keep", "later"]
    # The alarm set for the expiration deletes the pair from the file.
    await kv.put("gone-soon", "g", expiration_ttl=1)
    deadline = time.monotonic() + 60
    while rows_in_file(app, kv) != 2:
        assert time.monotonic() < deadline, "the expired pairs were never swept"
        await asyncio.sleep(0.2)


async def test_expirations_respect_the_minimum_ttl(app: TestApp) -> None:
    strict: KVNamespace = app.env.STRICT
    now = time.time()
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"expiration_ttl": 30}, "at least 60 seconds"),
        ({"expiration": now + 30}, "at least 60 seconds"),
        ({"expiration": now - 10}, "in the future"),
        ({"expiration": now + 100, "expiration_ttl": 100}, "not both"),
        ({"expiration": 10.0**12}, "after the year 9999"),
        ({"expiration_ttl": float("inf")}, "at least"),
    ]
    for options, message in refusals:
        with pytest.raises(ValueError, match=message):
            await strict.put("k", "v", **options)
    for options in ({"expiration_ttl": float("nan")}, {"expiration": "soon"}):
        with pytest.raises(TypeError):
            await strict.put("k", "v", **options)
    with pytest.raises(TypeError):
        await strict.put("k", "v", expiration_ttl=True)
    with pytest.raises(ValueError, match="cache_ttl must be at least 60"):
        await strict.get("k", cache_ttl=59)
    assert await strict.get("k") is None  # nothing was written
    await strict.put("k", "v", expiration_ttl=60)
    assert (await strict.list()).keys[0].expiration is not None
    # Over HTTP, the app answers 400 with the message.
    reply = await put(app, "k", "v", ttl="0.5")
    assert reply.status_code == 400 and "min_ttl" in reply.json()["message"]


async def test_list_pages_through_keys_in_byte_order(app: TestApp) -> None:
    kv: KVNamespace = app.env.CONFIG
    names = [f"p/{n:03d}" for n in range(25)] + ["p/é", "p/\U0001f600", "p/\x00", "p\x7f"]
    names += ["q/1", "q/2", "o", "\U0010ffff"]
    for name in names:
        await kv.put(name, "v", metadata={"name": name})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        reply = await app.http.get(
            "/list",
            params={
                "prefix": "p/",
                "limit": "10",
                **({"cursor": cursor} if cursor else {}),
            },
        )
        page = reply.json()
        pages += 1
        seen += [k["name"] for k in page["keys"]]
        assert all(k["metadata"] == {"name": k["name"]} for k in page["keys"])
        if page["list_complete"]:
            assert page["cursor"] is None
            break
        cursor = page["cursor"]
    expected = sorted(n for n in names if n.startswith("p/"))
    assert seen == expected and pages == 3
    assert sorted(expected, key=lambda n: n.encode()) == expected
    everything = await kv.list()
    assert [k.name for k in everything.keys] == sorted(names, key=lambda n: n.encode())
    assert everything.list_complete and everything.cursor is None
    top = await kv.list(prefix="\U0010ffff")
    assert [k.name for k in top.keys] == ["\U0010ffff"]
    assert (await kv.list(prefix="zzz")).keys == []
    # A cursor from another prefix's listing starts after its key, within the prefix.
    first = await kv.list(prefix="", limit=1)
    assert first.cursor is not None and not first.list_complete
    rest = await kv.list(prefix="q/", cursor=first.cursor)
    assert [k.name for k in rest.keys] == ["q/1", "q/2"]


async def test_a_page_stops_short_rather_than_overflow_a_message(app: TestApp) -> None:
    """200 keys with 1,000 bytes of metadata each are over the app's 256 KiB messages: a
    listing returns fewer keys than asked, with a cursor, as Cloudflare may."""

    kv: KVNamespace = app.env.CONFIG
    names = [f"m{n:03d}" for n in range(200)]
    await asyncio.gather(*(kv.put(n, "v", metadata="x" * 998) for n in names))
    first = await kv.list()
    assert 0 < len(first.keys) < 200 and not first.list_complete
    rest = await kv.list(cursor=first.cursor)
    assert rest.list_complete
    assert [k.name for k in first.keys + rest.keys] == names


async def test_keys_at_the_edges(app: TestApp) -> None:
    kv: KVNamespace = app.env.CONFIG
    hostile = [
        "\x00",
        "a\x00b",
        "../../etc/passwd",
        "/",
        "...",
        " ",
        "\n",
        "€" * 170,
        "k" * 512,
        "'; DROP TABLE kv_entries; --",
    ]
    for key in hostile:
        await kv.put(key, key)
        assert await kv.get(key, cache_ttl=1) == key
        assert await app.env.NOCACHE.get(key) is None
    listed = [k.name for k in (await kv.list()).keys]
    assert sorted(hostile, key=lambda k: k.encode()) == listed
    # Over HTTP too (query strings carry NUL).
    await put(app, "x\x00y", "nul")
    assert (await get(app, "x\x00y"))["value"] == "nul"


async def test_malformed_and_oversized_input_is_refused_and_writes_nothing(app: TestApp) -> None:
    kv: KVNamespace = app.env.CONFIG
    await kv.put("k", "before")
    for key in ("", ".", ".."):
        with pytest.raises(ValueError):
            await kv.put(key, "v")
        with pytest.raises(ValueError):
            await kv.get(key)
        reply = await put(app, key, "v")
        assert reply.status_code == 400, reply.text
    for bad_key in (b"k", 1, None):
        with pytest.raises(TypeError, match="a key must be a str"):
            await kv.get(bad_key)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lone surrogate"):
        await kv.put("\ud800", "v")
    with pytest.raises(ValueError, match="lone surrogate"):
        await kv.put("k", "\udfff")
    for key in ("k" * 513, "€" * 171):
        with pytest.raises(LimitExceeded) as caught:
            await kv.put(key, "v")
        assert caught.value.limit == "kv_key_bytes"
    reply = await put(app, "k" * 513, "v")
    assert reply.status_code == 413 and reply.json()["limit"] == "kv_key_bytes"
    with pytest.raises(LimitExceeded) as caught:
        await kv.put("k", "v", metadata={"pad": "x" * 1024})
    assert caught.value.limit == "kv_metadata_bytes"
    reply = await put(app, "k", "v", metadata=json.dumps("x" * 2000))
    assert reply.status_code == 413 and reply.json()["limit"] == "kv_metadata_bytes"
    await kv.put("k2", "v", metadata={"pad": "x" * 1000})  # 1,011 bytes: allowed
    for metadata in ({1, 2}, float("nan"), object()):
        with pytest.raises(ValueError, match="metadata must be a JSON value"):
            await kv.put("k", "v", metadata=metadata)
    for value in (1, None, {"a": 1}, ["x"]):
        with pytest.raises(TypeError, match=r"json\.dumps"):
            await kv.put("k", value)  # type: ignore[arg-type]
    for kind in ("streams", "arrayBuffer", ""):
        with pytest.raises(ValueError, match="type must be one of"):
            await kv.get("k", kind)  # type: ignore[arg-type]
    for ttl in (-1, 0.5):
        with pytest.raises(ValueError, match="cache_ttl"):
            await kv.get("k", cache_ttl=ttl)
    for wrong_ttl in (float("nan"), "60", True):
        with pytest.raises(TypeError, match="cache_ttl"):
            await kv.get("k", cache_ttl=wrong_ttl)  # type: ignore[arg-type]
    for limit in (0, 1001, -5, True, "10", 2.0):
        with pytest.raises(ValueError, match="limit must be"):
            await kv.list(limit=limit)  # type: ignore[arg-type]
    for cursor in ("!!!", "", "a" * 5000, "_w", 42):
        with pytest.raises(ValueError, match="malformed cursor"):
            await kv.list(cursor=cursor)  # type: ignore[arg-type]
    with pytest.raises(LimitExceeded):
        await kv.list(prefix="p" * 513)
    with pytest.raises(TypeError):
        await kv.list(prefix=b"p")  # type: ignore[arg-type]
    reply = await app.http.get("/list", params={"cursor": "%%%"})
    assert reply.status_code == 400 and "malformed cursor" in reply.json()["message"]
    assert await kv.get("k", cache_ttl=1) == "before"
    assert [k.name for k in (await kv.list()).keys] == ["k", "k2"]


async def test_the_owning_object_checks_its_callers_too(app: TestApp) -> None:
    """The object behind a namespace is reachable by the binding's code only, but it does
    not trust it: malformed calls fail and write nothing."""

    kv: KVNamespace = app.env.CONFIG
    stub = kv._namespace.get(kv.object_id)
    bad_calls = [
        stub.put("k", b"v", None, None),
        stub.put(b"", b"v", None, None),
        stub.put(b"k" * 513, b"v", None, None),
        stub.put(b"k", "v", None, None),
        stub.put(b"k", b"v", "soon", None),
        stub.put(b"k", b"v", None, "x" * 2000),
        stub.put(b"k", b"v", None, None, "no-such-upload", 99),
        stub.get(b"k", 0),
        stub.read(b"k", 1, 0, -1),
        stub.stage("", b"x"),
        stub.stage("u", b""),
        stub.discard(""),
        stub.discard(7),
        stub.list_keys("p", None, 10),
        stub.list_keys(b"", None, 0),
    ]
    accepted = []
    for n, call in enumerate(bad_calls):
        try:
            await call
        except (ObjectError, LimitExceeded):
            continue
        accepted.append(n)
    assert accepted == []
    assert (await kv.list()).keys == []


def test_config_refuses_bad_namespace_options(tmp_path: Path) -> None:
    base = 'name = "a"\nmain = "app:app"\n[[kv_namespaces]]\nbinding = "KV"\n'
    for line, key in [
        ("cache_ttl = -1", "cache_ttl"),
        ('min_ttl = "60"', "min_ttl"),
        ("cache_bytes = -1", "cache_bytes"),
        ("cache_ttl = nan", "cache_ttl"),
        ("caches_ttl = 5", "caches_ttl"),
    ]:
        (tmp_path / "raydo.toml").write_text(base + line + "\n")
        with pytest.raises(ConfigError) as caught:
            load_config(tmp_path)
        assert caught.value.key == f"kv_namespaces[0].{key}"
    (tmp_path / "raydo.toml").write_text(base + "[limits]\nkv_value_bytes = 0\n")
    with pytest.raises(ConfigError):
        load_config(tmp_path)


async def test_misses_read_together_answer_as_each_alone_would(app: TestApp) -> None:
    """Misses started together are one event of the namespace's object, looked up together:
    values past their first row, metadata, missing and expired keys each get the answer
    they get alone."""
    kv: KVNamespace = app.env.NOCACHE
    sizes = (0, 1, 32767, 32768, 32769, 65537, 262144 + 3)
    for size in sizes:
        await kv.put(f"t-{size}", bytes([size % 251]) * size, metadata={"size": size})
    await kv.put("t-expiring", "e", expiration_ttl=1)
    listed = {k.name: k for k in (await kv.list(prefix="t-")).keys}
    expires = listed["t-expiring"].expiration
    assert expires is not None
    await kv.get("t-0")  # SQLite has now seen the lookup only read
    await asyncio.sleep(max(0.0, expires + 0.1 - time.time()))
    names = [f"t-{size}" for size in sizes] + ["t-expiring", "t-missing"]
    together = await asyncio.gather(*(kv.get_with_metadata(name, "bytes") for name in names))
    alone = [await kv.get_with_metadata(name, "bytes") for name in names]
    assert [(g.value, g.metadata) for g in together] == [(g.value, g.metadata) for g in alone]
    assert [g.value for g in together] == [bytes([s % 251]) * s for s in sizes] + [None, None]
    assert [g.metadata for g in together[: len(sizes)]] == [{"size": s} for s in sizes]


async def test_large_values_read_together_are_answered_within_a_message(app: TestApp) -> None:
    """Values longer than their first row answered in one batch: the batch's reply stays
    within ``message_bytes`` (the rest of the keys go alone), so every caller gets its value."""
    kv: KVNamespace = app.env.NOCACHE
    values = {f"big-{n}": bytes([n]) * (200 * 1024) for n in range(8)}
    for name, value in values.items():
        await kv.put(name, value)
        assert await kv.get(name, "bytes") == value  # SQLite has seen the lookup read
    got = await asyncio.gather(*(kv.get(name, "bytes") for name in values))
    assert got == list(values.values())
