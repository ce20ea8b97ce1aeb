"""The blob bucket binding (``[[r2_buckets]]``) over real HTTP, on both backends.

Every test serves ``tests/apps/r2`` in-process with ``start_app`` and talks to it with a real
HTTP client. Tests marked with the ``backend`` fixture run twice: on the filesystem backend,
and on the S3 backend against moto's S3 server started on 127.0.0.1 for this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import stat
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import pytest

from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from raydo.storage.folder_lock import RUNTIME_FILES
from tests.cluster import REPO, copy_app
from tests.replication.stores import StoreServer

MiB = 1024 * 1024
BACKENDS = ["filesystem", "s3", "seaweedfs"]


# ---- fixtures ---------------------------------------------------------------------------


#: The filesystem backend, and the S3 backend against moto's server and against SeaweedFS
#: (``weed mini``, a real S3-compatible server with an on-disk store), both on 127.0.0.1.
S3_SERVERS = {"s3": "moto_store", "seaweedfs": "seaweedfs_store"}


@pytest.fixture
def s3_endpoint(backend: str, request: pytest.FixtureRequest) -> str:
    """The S3 endpoint of ``backend`` (moto's for the tests that name no backend)."""
    server: StoreServer = request.getfixturevalue(S3_SERVERS.get(backend, "moto_store"))
    return server.endpoint


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def r2_app(tmp_path: Path, backend: str, endpoint: str | None = None, extra: str = "") -> Path:
    """A copy of ``tests/apps/r2`` with FILES on ``backend`` (a fresh S3 bucket for s3)."""
    app_dir = copy_app(REPO / "tests" / "apps" / "r2", tmp_path)
    config = app_dir / "raydo.toml"
    text = config.read_text()
    if backend in S3_SERVERS:
        assert endpoint is not None
        name = f"t-{uuid.uuid4().hex[:20]}"
        s3_client(endpoint).create_bucket(Bucket=name)
        settings = f'backend = "s3"\nendpoint_url = "{endpoint}"\nregion = "us-east-1"\n'
        text = text.replace(
            'bucket_name = "files"\n', f'bucket_name = "files"\n{settings}s3_bucket = "{name}"\n'
        )
    config.write_text(text + extra)
    return app_dir


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app_dir(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    endpoint = request.getfixturevalue("s3_endpoint") if backend in S3_SERVERS else None
    return r2_app(tmp_path, backend, endpoint)


def bucket_dir(app: TestApp, name: str = "files") -> Path:
    return app.config.storage / "_r2" / name


async def put(app: TestApp, key: str, body: bytes | str, **headers: str) -> httpx.Response:
    return await app.http.put("/o", params={"key": key}, content=body, headers=headers)


async def get(app: TestApp, key: str, *, headers: dict[str, str] | None = None, **q: Any) -> Any:
    return await app.http.get("/o", params={"key": key, **q}, headers=headers)


# ---- the basic calls ----------------------------------------------------------------------


async def test_put_get_head_delete(app: TestApp) -> None:
    body = b"hello, bucket"
    stored = await put(
        app, "docs/a.txt", body, **{"content-type": "text/plain", "x-meta-owner": "ann"}
    )
    assert stored.status_code == 200
    meta = stored.json()
    assert meta["size"] == len(body)
    assert meta["etag"] == hashlib.md5(body).hexdigest()
    assert meta["http_etag"] == f'"{meta["etag"]}"'
    assert meta["http_metadata"] == {"content_type": "text/plain"}
    assert meta["custom_metadata"] == {"owner": "ann"}

    head = (await app.http.get("/head", params={"key": "docs/a.txt"})).json()
    assert {k: head[k] for k in ("size", "etag", "version", "custom_metadata")} == {
        k: meta[k] for k in ("size", "etag", "version", "custom_metadata")
    }
    got = await get(app, "docs/a.txt")
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == "text/plain"
    assert got.headers["x-etag"] == meta["etag"]

    again = (await put(app, "docs/a.txt", b"v2")).json()
    assert again["version"] != meta["version"]
    assert (await get(app, "docs/a.txt")).content == b"v2"

    assert (await app.http.delete("/o", params={"key": "docs/a.txt"})).status_code == 204
    assert (await app.http.get("/head", params={"key": "docs/a.txt"})).status_code == 404
    assert (await get(app, "docs/a.txt")).status_code == 404
    # Deleting what is not there is fine.
    assert (await app.http.delete("/o", params={"key": "docs/a.txt"})).status_code == 204
    # An empty body is an object too.
    empty = (await put(app, "empty", b"")).json()
    assert empty["size"] == 0 and empty["etag"] == hashlib.md5(b"").hexdigest()
    assert (await get(app, "empty")).content == b""


async def test_the_binding_api_directly(app: TestApp) -> None:
    files = app.env.FILES

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield bytes([65 + i]) * 10

    stored = await files.put("k", chunks(), http_metadata={"cache_control": "no-store"})
    assert stored is not None and stored.size == 30
    found = await files.get("k")
    assert await found.text() == "A" * 10 + "B" * 10 + "C" * 10
    with pytest.raises(RuntimeError, match="already read"):
        found.body  # noqa: B018 (a body is read once)
    await files.put("j", '{"a": [1, 2]}')
    assert await (await files.get("j")).json() == {"a": [1, 2]}
    await files.put("list", [b"x", bytearray(b"y"), memoryview(b"z")])
    assert await (await files.get("list")).read() == b"xyz"
    await files.put("none", None)
    assert (await files.head("none")).size == 0
    # Copying one object's body into another streams it.
    copied = await files.put("copy", await files.get("list"))
    assert copied.etag == hashlib.md5(b"xyz").hexdigest()
    headers: dict[str, str] = {}
    (await files.head("k")).write_http_metadata(headers)
    assert headers == {"cache-control": "no-store"}
    # An unread body can be let go.
    unread = await files.get("k")
    await unread.aclose()

    with pytest.raises(TypeError, match="put value"):
        await files.put("bad", 12)

    async def not_bytes() -> AsyncIterator[Any]:
        yield "text"

    with pytest.raises(TypeError, match="yields bytes"):
        await files.put("bad", not_bytes())
    assert await files.head("bad") is None
    from raydo.storage.blobs import InvalidArgument

    with pytest.raises(InvalidArgument, match="http_metadata"):
        await files.put("bad", b"", http_metadata={"colour": "red"})
    with pytest.raises(InvalidArgument, match="printable ASCII"):
        await files.put("bad", b"", http_metadata={"content_type": "a\nb"})
    with pytest.raises(InvalidArgument):
        await files.put("bad", b"", custom_metadata={"a": 1})
    from raydo.storage.limits import LimitExceeded

    with pytest.raises(LimitExceeded, match="blob_metadata_bytes"):
        await files.put("bad", b"", custom_metadata={"a": "x" * 3000})
    with pytest.raises(InvalidArgument, match="at most 1000"):
        await files.delete([f"k{i}" for i in range(1001)])
    assert await files.head("bad") is None


async def test_buckets_never_see_each_others_keys(app: TestApp) -> None:
    await put(app, "same", b"files")
    await app.http.put("/o", params={"key": "same", "bucket": "OTHER"}, content=b"other")
    assert (await get(app, "same")).content == b"files"
    assert (await get(app, "same", bucket="OTHER")).content == b"other"
    await app.http.delete("/o", params={"key": "same", "bucket": "OTHER"})
    assert (await get(app, "same")).content == b"files"


async def test_objects_reach_buckets_through_their_env(app: TestApp) -> None:
    etag = (await app.http.post("/archive", params={"key": "o", "text": "kept"})).json()
    assert etag["etag"] == hashlib.md5(b"kept").hexdigest()
    assert (await app.http.get("/archive", params={"key": "o"})).json() == {"text": "kept"}
    head = (await app.http.get("/head", params={"key": "o"})).json()
    assert head["custom_metadata"] == {"by": "archiver"}


# ---- ranges and conditions ----------------------------------------------------------------


async def test_ranges(app: TestApp) -> None:
    body = bytes(range(256)) * 4  # 1,024 bytes
    await put(app, "r", body)
    cases = [
        ({"offset": 10, "length": 5}, body[10:15], "10,5"),
        ({"offset": 1000}, body[1000:], "1000,24"),
        ({"suffix": 24}, body[-24:], "1000,24"),
        ({"suffix": 5000}, body, "0,1024"),
        ({"offset": 1020, "length": 100}, body[1020:], "1020,4"),
        ({"length": 3}, body[:3], "0,3"),
        ({"offset": 5, "length": 0}, b"", "5,0"),
    ]
    for wanted, expected, served in cases:
        got = await app.http.get("/o", params={"key": "r", **wanted})
        assert got.status_code == 200, (wanted, got.text)
        assert got.content == expected, wanted
        assert got.headers["x-range"] == served, wanted
        assert got.headers["x-size"] == "1024"
    for bad, code in [
        ({"offset": 1024}, "invalid_range"),
        ({"offset": 5000}, "invalid_range"),
        ({"offset": -1}, "invalid_argument"),
        ({"suffix": 0}, "invalid_argument"),
        ({"suffix": 4, "offset": 1}, "invalid_argument"),
    ]:
        refused = await app.http.get("/o", params={"key": "r", **bad})
        assert refused.status_code == 400, bad
        assert refused.json()["error"] == code, bad
    files = app.env.FILES
    from raydo.storage.blobs import InvalidArgument, Range

    assert await (await files.get("r", range=Range(offset=2, length=2))).read() == body[2:4]
    with pytest.raises(InvalidArgument, match="unknown range"):
        await files.get("r", range={"start": 1})
    with pytest.raises(InvalidArgument):
        await files.get("r", range={"offset": "1"})


async def test_conditional_put_and_get(app: TestApp) -> None:
    created = await put(app, "c", b"one", **{"if-none-match": "*"})
    assert created.status_code == 200
    etag = created.json()["etag"]
    # Create-only fails once the object exists; nothing is written.
    assert (await put(app, "c", b"two", **{"if-none-match": "*"})).status_code == 412
    assert (await put(app, "c", b"two", **{"if-match": '"0000"'})).status_code == 412
    assert (await get(app, "c")).content == b"one"
    replaced = await put(app, "c", b"two", **{"if-match": f'"{etag}"'})
    assert replaced.status_code == 200
    new_etag = replaced.json()["etag"]
    # If-Match on a missing object fails.
    assert (await put(app, "missing", b"x", **{"if-match": "*"})).status_code == 412
    assert (await app.http.get("/head", params={"key": "missing"})).status_code == 404

    # A get whose conditions fail answers the metadata without a body.
    failed = await get(app, "c", headers={"if-match": etag})
    assert failed.status_code == 412 and failed.json()["etag"] == new_etag
    assert (await get(app, "c", headers={"if-none-match": new_etag})).status_code == 412
    assert (await get(app, "c", headers={"if-match": new_etag})).content == b"two"
    assert (await get(app, "c", headers={"if-none-match": etag})).content == b"two"

    files = app.env.FILES
    past = datetime(2000, 1, 1, tzinfo=UTC)
    future = datetime.now(UTC) + timedelta(days=1)
    body = await files.get("c", only_if={"uploaded_after": past})
    assert await body.read() == b"two"
    without = await files.get("c", only_if={"uploaded_after": future})
    assert not hasattr(without, "body") and without.etag == new_etag
    assert not hasattr(await files.get("c", only_if={"uploaded_before": past}), "body")
    assert await files.put("c", b"3", only_if={"uploaded_before": past}) is None
    # etag_matches wins over uploaded_before, as If-Match over If-Unmodified-Since.
    both = {"etag_matches": new_etag, "uploaded_before": past}
    assert await files.put("c", b"3", only_if=both) is not None
    from raydo.storage.blobs import InvalidArgument

    with pytest.raises(InvalidArgument, match="unknown only_if"):
        await files.get("c", only_if={"etag": "x"})


# ---- listing ------------------------------------------------------------------------------


KEYS = [
    "a/1",
    "a/2",
    "a/b/3",
    "a/b/4",
    "a/c",
    "a\u00e9",
    "b/1",
    "b/2/x",
    "c",
    "d/1",
    "\u4e2d/1",
]


async def list_all(app: TestApp, **q: Any) -> tuple[list[str], list[str], int]:
    keys: list[str] = []
    prefixes: list[str] = []
    pages = 0
    cursor = None
    while True:
        params = {**q, **({"cursor": cursor} if cursor else {})}
        page = (await app.http.get("/list", params=params)).json()
        pages += 1
        keys += [o["key"] for o in page["objects"]]
        prefixes += page["delimited_prefixes"]
        assert len(page["objects"]) + len(page["delimited_prefixes"]) <= int(q.get("limit", 1000))
        if not page["truncated"]:
            assert page["cursor"] is None
            return keys, prefixes, pages
        cursor = page["cursor"]


async def test_list_pages_and_delimiters(app: TestApp) -> None:
    for key in reversed(KEYS):
        await put(app, key, key.encode(), **{"x-meta-k": "v", "content-type": "text/x"})
    by_bytes = sorted(KEYS, key=lambda k: k.encode())
    keys, prefixes, pages = await list_all(app, limit=3)
    assert keys == by_bytes and prefixes == [] and pages == 4
    keys, prefixes, _ = await list_all(app, delimiter="/", limit=2)
    assert keys == ["a\u00e9", "c"]
    assert prefixes == ["a/", "b/", "d/", "\u4e2d/"]
    keys, prefixes, _ = await list_all(app, prefix="a/", delimiter="/", limit=1)
    assert keys == ["a/1", "a/2", "a/c"] and prefixes == ["a/b/"]
    keys, prefixes, _ = await list_all(app, prefix="a/", limit=1000)
    assert keys == ["a/1", "a/2", "a/b/3", "a/b/4", "a/c"] and prefixes == []
    keys, _, _ = await list_all(app, start_after="b/1")
    assert keys == by_bytes[by_bytes.index("b/1") + 1 :]
    keys, _, _ = await list_all(app, prefix="zz")
    assert keys == []

    plain = (await app.http.get("/list", params={"prefix": "c"})).json()["objects"][0]
    assert plain["http_metadata"] == {} and plain["custom_metadata"] == {}
    assert plain["size"] == 1 and plain["etag"] == hashlib.md5(b"c").hexdigest()
    params = (("prefix", "c"), ("include", "http_metadata"), ("include", "custom_metadata"))
    full = (await app.http.get("/list", params=params)).json()["objects"][0]
    assert full["http_metadata"] == {"content_type": "text/x"}
    assert full["custom_metadata"] == {"k": "v"}

    for bad in ({"limit": "0"}, {"limit": "1001"}, {"cursor": "%%%"}, {"delimiter": ""}):
        refused = await app.http.get("/list", params=bad)
        assert refused.status_code == 400, bad
    refused = await app.http.get("/list", params={"include": "everything"})
    assert refused.status_code == 400


async def test_delete_many(app: TestApp) -> None:
    for key in KEYS:
        await put(app, key, b"x")
    gone = ["a/1", "c", "never-there", "c"]
    assert (await app.http.post("/delete", json=gone)).status_code == 204
    keys, _, _ = await list_all(app)
    assert sorted(keys) == sorted(set(KEYS) - set(gone))


# ---- multipart ----------------------------------------------------------------------------


async def test_multipart_upload(app: TestApp, backend: str) -> None:
    key = "big/file.bin"
    upload_id = (await app.http.post("/mpu/create", params={"key": key})).json()["upload_id"]
    first = os.urandom(5 * MiB)
    last = b"tail" * 1000
    q = {"key": key, "upload_id": upload_id}
    # Parts may arrive out of order; uploading a number again replaces it.
    p2 = (await app.http.put("/mpu/part", params={**q, "n": 2}, content=b"old")).json()
    p2 = (await app.http.put("/mpu/part", params={**q, "n": 2}, content=last)).json()
    p1 = (await app.http.put("/mpu/part", params={**q, "n": 1}, content=first)).json()
    assert p1["etag"] == hashlib.md5(first).hexdigest()
    # Before completion nothing is visible.
    assert (await app.http.get("/head", params={"key": key})).status_code == 404
    # A part that is not the last must be at least 5 MiB.
    small = await app.http.post("/mpu/complete", params=q, json=[p2, p1])
    assert small.status_code == 400 and small.json()["error"] == "invalid_part"
    wrong = await app.http.post("/mpu/complete", params=q, json=[{**p1, "etag": "ab"}])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_part"
    done = await app.http.post("/mpu/complete", params=q, json=[p1, p2])
    assert done.status_code == 200, done.text
    meta = done.json()
    digests = hashlib.md5(bytes.fromhex(p1["etag"]) + bytes.fromhex(p2["etag"])).hexdigest()
    assert meta["etag"] == f"{digests}-2"
    assert meta["size"] == len(first) + len(last)
    assert meta["custom_metadata"] == {"kind": "multipart"}
    got = await get(app, key)
    assert hashlib.md5(got.content).digest() == hashlib.md5(first + last).digest()
    ranged = await get(app, key, offset=5 * MiB - 2, length=6)
    assert ranged.content == first[-2:] + last[:4]
    # The upload is over.
    again = await app.http.put("/mpu/part", params={**q, "n": 3}, content=b"x")
    assert again.status_code == 400 and again.json()["error"] == "no_such_upload"

    other = (await app.http.post("/mpu/create", params={"key": "x"})).json()["upload_id"]
    q2 = {"key": "x", "upload_id": other}
    await app.http.put("/mpu/part", params={**q2, "n": 1}, content=b"abc")
    assert (await app.http.post("/mpu/abort", params=q2)).status_code == 204
    aborted = await app.http.post(
        "/mpu/complete", params=q2, json=[{"part_number": 1, "etag": "x"}]
    )
    assert aborted.status_code == 400
    assert aborted.json()["error"] in ("no_such_upload", "invalid_part")
    for bogus in ("../../etc", "0" * 32, ""):
        refused = await app.http.put(
            "/mpu/part", params={"key": "x", "upload_id": bogus, "n": 1}, content=b"x"
        )
        assert refused.status_code == 400, bogus
    third = (await app.http.post("/mpu/create", params={"key": "y"})).json()["upload_id"]
    if backend == "filesystem":  # S3 checks this itself; moto does not
        # Another key's upload id is not this key's.
        cross = await app.http.put(
            "/mpu/part", params={"key": "x", "upload_id": third, "n": 1}, content=b"x"
        )
        assert cross.status_code == 400
    for n in ("0", "10001"):
        out_of_range = await app.http.put(
            "/mpu/part", params={"key": "y", "upload_id": third, "n": n}, content=b"x"
        )
        assert out_of_range.status_code == 400


# ---- hostile keys -------------------------------------------------------------------------


HOSTILE = [
    "../escape",
    "../../../../../../tmp/escape",
    "/etc/passwd",
    "a/../../b",
    "..",
    ".",
    "./.",
    "\\..\\windows",
    "C:\\x",
    "~/.ssh/id",
    "index.sqlite",
    "tmp/../objects",
    "\u202ertl",
    "\n\r\t",
    "%2e%2e%2f",
    "x" * 1024,
    "\u00e9" * 512,  # 1,024 bytes
]


def _seaweedfs_refuses(key: str) -> bool:
    """SeaweedFS keeps keys as filer paths ("\\" a separator too): a "." or ".." segment or
    one over 255 bytes is refused (AWS and moto keep every key as given)."""
    segments = key.replace("\\", "/").split("/")
    return any(part in (".", "..") or len(part.encode()) > 255 for part in segments)


def _seaweedfs_folds(key: str) -> str:
    """The key SeaweedFS lists for ``key``: "\\" as "/", no leading "/", no "//"."""
    return re.sub("/+", "/", key.replace("\\", "/")).lstrip("/")


async def test_hostile_keys_stay_inside_the_bucket(app_dir: Path, backend: str) -> None:
    # moto's server (werkzeug) cannot take control characters in a key's path; S3 can.
    hostile = [k for k in HOSTILE if backend == "filesystem" or k.isprintable()]
    refused_by_store = [k for k in hostile if backend == "seaweedfs" and _seaweedfs_refuses(k)]
    hostile = [k for k in hostile if k not in refused_by_store]
    fold = _seaweedfs_folds if backend == "seaweedfs" else (lambda key: key)

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        storage = app.config.storage
        for key in refused_by_store:  # refused by the store, said so, nothing stored
            answer = await put(app, key, b"refused")
            assert answer.status_code == 400, (key, answer.text)
            assert answer.json()["error"] == "invalid_key"
            assert "the S3 store refused the key" in answer.json()["message"]
        for i, key in enumerate(hostile):
            stored = await put(app, key, f"body {i}".encode())
            assert stored.status_code == 200, (key, stored.text)
            assert stored.json()["key"] == key
        for i, key in enumerate(hostile):
            assert (await get(app, key)).content == f"body {i}".encode(), key
        keys, _, _ = await list_all(app)
        assert sorted(keys) == sorted(fold(key) for key in hostile)
        # Presigned URLs carry any key, too.
        for key in hostile[:6]:
            url = (await app.http.post("/presign", params={"key": key})).json()["url"]
            assert (await app.http.get(url)).content == f"body {hostile.index(key)}".encode()

        # Nothing was written outside the storage folder, and inside it only under the
        # buckets' folders (and the archiver's own files); no name on disk comes from a key.
        assert not (storage.parent / "escape").exists()
        assert not Path("/tmp/escape").exists()
        for path in storage.rglob("*"):
            relative = path.relative_to(storage).as_posix()
            if relative in RUNTIME_FILES:  # the runtime's lock on its folder, not a blob
                continue
            assert relative == "_r2" or relative.startswith(("_r2/", "ARCHIVER")), relative
            assert "escape" not in relative and "passwd" not in relative
        if backend == "filesystem":
            fixed = {"index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "presign.key"}
            for path in bucket_dir(app).rglob("*"):
                name = path.name
                assert name in fixed | {"objects", "parts", "tmp"} or re.fullmatch(
                    r"[0-9a-f]{2}|[0-9a-f]{32}", name
                ), name

        # Keys the bucket refuses, with the reason.
        refusals = [
            ("x" * 1025, 413, "blob_key_bytes"),
            ("\u00e9" * 513, 413, "blob_key_bytes"),
            ("k" * 2048, 413, "blob_key_bytes"),
            ("", 400, "invalid_key"),
            ("a\x00b", 400, "invalid_key"),
        ]
        for key, status, why in refusals:
            refused = await put(app, key, b"x")
            assert refused.status_code == status, key[:20]
            assert why in refused.text
            assert (await get(app, key)).status_code == status
        files = app.env.FILES
        from raydo.storage.blobs import InvalidKey

        for bad in ("\ud800", 7, b"bytes"):
            with pytest.raises(InvalidKey):
                await files.put(bad, b"x")
        keys, _, _ = await list_all(app)
        assert sorted(keys) == sorted(fold(key) for key in hostile)


# ---- presigned URLs -----------------------------------------------------------------------


async def test_presigned_urls(app: TestApp) -> None:
    files = app.env.FILES
    await put(app, "p/doc.txt", b"0123456789", **{"content-type": "text/plain"})

    async def presign(key: str, method: str = "GET", expires_in: int = 60) -> str:
        params: dict[str, str | int] = {"key": key, "method": method, "expires_in": expires_in}
        reply = await app.http.post("/presign", params=params)
        assert reply.status_code == 200, reply.text
        url: str = reply.json()["url"]
        assert url.startswith("/_raydo/r2/FILES?key=")
        return url

    url = await presign("p/doc.txt")
    got = await app.http.get(url)
    assert got.status_code == 200 and got.content == b"0123456789"
    assert got.headers["content-type"] == "text/plain"
    assert got.headers["etag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    assert got.headers["content-length"] == "10"
    ranged = await app.http.get(url, headers={"range": "bytes=2-4"})
    assert ranged.status_code == 206 and ranged.content == b"234"
    assert ranged.headers["content-range"] == "bytes 2-4/10"
    assert (await app.http.get(url, headers={"range": "bytes=-3"})).content == b"789"
    beyond = await app.http.get(url, headers={"range": "bytes=50-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == "bytes */10"
    # Several ranges or garbage: the whole body, as HTTP allows.
    assert (await app.http.get(url, headers={"range": "bytes=0-1,3-4"})).content == b"0123456789"
    not_modified = await app.http.get(url, headers={"if-none-match": got.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""
    since = {"if-modified-since": "Fri, 01 Jan 2100 00:00:00 GMT"}
    assert (await app.http.get(url, headers=since)).status_code == 304
    before = {"if-unmodified-since": "Sat, 01 Jan 2000 00:00:00 GMT"}
    assert (await app.http.get(url, headers=before)).status_code == 412
    garbage = {"if-modified-since": "not a date"}
    assert (await app.http.get(url, headers=garbage)).status_code == 200
    assert (await app.http.get(url, headers={"if-match": '"nope"'})).status_code == 412

    head_url = await presign("p/doc.txt", "HEAD")
    head = await app.http.head(head_url)
    assert head.status_code == 200 and head.headers["content-length"] == "10"

    put_url = await presign("p/up.bin", "PUT")
    stored = await app.http.put(put_url, content=b"uploaded", headers={"content-type": "a/b"})
    assert stored.status_code == 200, stored.text
    assert stored.json()["etag"] == hashlib.md5(b"uploaded").hexdigest()
    up = await files.get("p/up.bin")
    assert await up.read() == b"uploaded" and up.http_metadata == {"content_type": "a/b"}
    refused = await app.http.put(put_url, content=b"again", headers={"if-none-match": "*"})
    assert refused.status_code == 412

    missing = await app.http.get(await presign("p/none"))
    assert missing.status_code == 404

    # Refusals: 403 JSON, and nothing done.
    def swap(url: str, name: str, value: str) -> str:
        parts = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
        parts[name] = value
        return url.split("?")[0] + "?" + "&".join(f"{k}={v}" for k, v in parts.items())

    signature = url.rsplit("signature=", 1)[1]
    tampered = [
        swap(url, "key", quote("p/other.txt", safe="")),
        swap(url, "signature", ("0" if signature[0] != "0" else "1") + signature[1:]),
        swap(url, "signature", "zz"),
        swap(url, "expires", str(int(time.time()) + 10_000)),
        swap(url, "expires", "-5"),
        url.split("&signature=")[0],
        "/_raydo/r2/FILES",
        url.replace("/FILES?", "/OTHER?"),
    ]
    for bad in tampered:
        answer = await app.http.get(bad)
        assert answer.status_code in (403, 404), bad
        if answer.status_code == 403:
            assert answer.json()["error"] in ("signature_mismatch", "missing_signature")
    # The OTHER bucket has another name, so FILES' signatures never open it.
    assert (await app.http.get(url.replace("/FILES?", "/OTHER?"))).status_code == 403
    # A GET URL does not PUT or DELETE, and a PUT URL does not GET.
    wrong = await app.http.put(url, content=b"overwrite")
    assert wrong.status_code == 403 and wrong.json()["error"] == "signature_mismatch"
    assert (await app.http.delete(url)).status_code == 403
    assert (await app.http.get(put_url)).status_code == 403
    assert (await files.get("p/doc.txt")) is not None
    assert await (await files.get("p/doc.txt")).read() == b"0123456789"

    # Expired: a URL signed with a past expiry.
    past = int(time.time()) - 1
    expired_sig = files.signer.signature("GET", "p/doc.txt", past)
    expired = f"/_raydo/r2/FILES?key=p%2Fdoc.txt&expires={past}&signature={expired_sig}"
    answer = await app.http.get(expired)
    assert answer.status_code == 403 and answer.json()["error"] == "expired"

    delete_url = await presign("p/doc.txt", "DELETE")
    assert (await app.http.delete(delete_url)).status_code == 204
    assert await files.head("p/doc.txt") is None

    from raydo.storage.blobs import InvalidArgument

    for args in (("k", "POST", 60), ("k", "GET", 0), ("k", "GET", 8 * 24 * 3600)):
        with pytest.raises(InvalidArgument):
            files.create_presigned_url(*args)
    full = files.create_presigned_url("k", base_url="https://files.example.com/")
    assert full.startswith("https://files.example.com/_raydo/r2/FILES?key=k&expires=")


async def test_the_generated_secret_is_private_and_survives_restarts(tmp_path: Path) -> None:
    app_dir = r2_app(tmp_path, "filesystem")
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        await put(app, "k", b"v")
        url = (await app.http.post("/presign", params={"key": "k"})).json()["url"]
        secret = bucket_dir(app) / "presign.key"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert len(secret.read_text()) == 64
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        assert (await app.http.get(url)).content == b"v"


async def test_a_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = 'presign_secret_env = "R2_TEST_SECRET"\n'
    app_dir = r2_app(tmp_path, "filesystem")
    config = app_dir / "raydo.toml"
    config.write_text(
        config.read_text().replace('bucket_name = "files"\n', f'bucket_name = "files"\n{extra}')
    )

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        await put(app, "k", b"v")
        from raydo.bindings.r2 import PresignError

        with pytest.raises(PresignError, match="R2_TEST_SECRET"):
            app.env.FILES.create_presigned_url("k")
        monkeypatch.setenv("R2_TEST_SECRET", "short")
        with pytest.raises(PresignError, match="shorter"):
            app.env.FILES.create_presigned_url("k")
    monkeypatch.setenv("R2_TEST_SECRET", "s" * 40)

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        url = app.env.FILES.create_presigned_url("k")
        assert (await app.http.get(url)).content == b"v"
        assert not (bucket_dir(app) / "presign.key").exists()
        import hmac

        expires = url.split("expires=")[1].split("&")[0]
        message = f"raydo-r2-v1\nGET\nfiles\n{expires}\nk".encode()
        assert url.endswith(hmac.new(b"s" * 40, message, hashlib.sha256).hexdigest())


async def test_presigned_put_is_bound_by_blob_put_bytes(tmp_path: Path) -> None:
    app_dir = r2_app(tmp_path, "filesystem", extra="\n[limits]\nblob_put_bytes = 1000\n")

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        url = (await app.http.post("/presign", params={"key": "k", "method": "PUT"})).json()["url"]
        declared = await app.http.put(url, content=b"x" * 1001)
        assert declared.status_code == 413 and declared.json()["limit"] == "blob_put_bytes"

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"y" * 400

        streamed = await app.http.put(url, content=chunked())
        assert streamed.status_code == 413 and streamed.json()["limit"] == "blob_put_bytes"
        assert (await app.http.put(url, content=b"z" * 1000)).status_code == 200
        assert (await app.env.FILES.head("k")).size == 1000
        assert list((bucket_dir(app) / "tmp").iterdir()) == []


async def test_app_routes_stay_under_request_bytes(tmp_path: Path) -> None:
    app_dir = r2_app(tmp_path, "filesystem", extra="\n[limits]\nrequest_bytes = 100000\n")

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        declared = await put(app, "big", b"x" * 100_001)
        assert declared.status_code == 413 and "request_bytes" in declared.text

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(30):
                yield b"y" * 10_000

        streamed = await app.http.put("/o", params={"key": "big"}, content=chunked())
        assert streamed.status_code == 413 and "request_bytes" in streamed.text
        assert await app.env.FILES.head("big") is None
        assert await settled(lambda: not any((bucket_dir(app) / "tmp").iterdir()))
        assert (await put(app, "big", b"z" * 100_000)).status_code == 200


async def test_full_durability_fsyncs_and_still_serves(tmp_path: Path) -> None:
    from raydo.storage.blobs import FilesystemBackend, Part

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data

    backend = FilesystemBackend(tmp_path / "bucket", full_sync=True)
    meta = await backend.put(
        "k", body(b"durable"), http_metadata={}, custom_metadata={}, only_if=None, max_bytes=10**9
    )
    assert meta is not None and meta.size == 7
    found = await backend.get("k", range=None, only_if=None)
    assert found is not None and found[1] is not None
    assert b"".join([c async for c in found[1]]) == b"durable"
    upload = await backend.create_multipart("m", http_metadata={}, custom_metadata={})
    part = await backend.upload_part("m", upload, 1, body(b"only part"), max_bytes=10**9)
    assert part == Part(1, hashlib.md5(b"only part").hexdigest())
    done = await backend.complete_multipart("m", upload, [part])
    assert done.size == 9 and done.etag.endswith("-1")
    await backend.aclose()


# ---- interrupted and large uploads --------------------------------------------------------


async def send_half(app: TestApp, target: str, size: int, seen: Path | None = None) -> None:
    """Start a PUT of ``size`` bytes, send a tenth of it, and hang up (once a file shows in
    the folder ``seen``, when given: proof that the server was storing the body)."""
    port = int(app.url.rsplit(":", 1)[1])
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"PUT {target} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {size}\r\n\r\n".encode()
    )
    writer.write(b"h" * (size // 10))
    await writer.drain()
    if seen is not None:
        assert await settled(lambda: seen.exists() and any(seen.iterdir()))
    else:
        await asyncio.sleep(0.2)  # let the server take some of it in
    writer.close()
    await writer.wait_closed()


async def settled(condition: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_an_interrupted_upload_leaves_nothing(app: TestApp, backend: str) -> None:
    files = app.env.FILES
    await put(app, "kept", b"old body")
    put_url = (await app.http.post("/presign", params={"key": "kept", "method": "PUT"})).json()
    targets = [
        ("/o?key=cut", "cut"),
        ("/o?key=kept", "kept"),
        (put_url["url"], "kept"),
    ]
    tmp = bucket_dir(app) / "tmp"
    for target, _key in targets:
        await send_half(app, target, 4 * MiB, tmp if backend == "filesystem" else None)
        assert await settled(lambda: not tmp.exists() or not any(tmp.iterdir()))
    assert await files.head("cut") is None
    assert await (await files.get("kept")).read() == b"old body"
    page = await files.list()
    assert [o.key for o in page.objects] == ["kept"]
    if backend in S3_SERVERS:
        s3 = s3_client(files.backend._endpoint_url)
        listed = s3.list_objects_v2(Bucket=files.backend.bucket)
        assert [o["Key"] for o in listed["Contents"]] == ["kept"]
        assert not s3.list_multipart_uploads(Bucket=files.backend.bucket).get("Uploads")
    else:
        objects = [p for p in (bucket_dir(app) / "objects").rglob("*") if p.is_file()]
        assert len(objects) == 1  # only the kept body


async def test_large_bodies_stream_in_bounded_memory(tmp_path: Path) -> None:
    app_dir = r2_app(tmp_path, "filesystem")
    total = 200 * MiB
    block = os.urandom(MiB)

    async def body() -> AsyncIterator[bytes]:
        for i in range(total // MiB):
            yield i.to_bytes(8, "big") + block[8:]

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        process = psutil.Process()
        warm = app.env.FILES.create_presigned_url("warm", "PUT")
        await app.http.put(warm, content=b"w" * MiB)
        before = process.memory_info().rss
        expected = hashlib.md5()
        async for chunk in body():
            expected.update(chunk)
        url = app.env.FILES.create_presigned_url("big", "PUT")
        stored = await app.http.put(url, content=body())
        assert stored.status_code == 200, stored.text
        assert stored.json()["size"] == total
        assert stored.json()["etag"] == expected.hexdigest()
        peak_put = process.memory_info().rss

        got = hashlib.md5()
        size = 0
        async with app.http.stream("GET", app.env.FILES.create_presigned_url("big")) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-length"] == str(total)
            async for chunk in reply.aiter_raw():
                got.update(chunk)
                size += len(chunk)
        after = process.memory_info().rss
        assert size == total and got.hexdigest() == expected.hexdigest()
        growth = max(peak_put, after) - before
        assert growth < 64 * MiB, f"RSS grew by {growth / MiB:.0f} MiB for a 200 MiB body"


# ---- several processes on one bucket ------------------------------------------------------

_WRITER = """
import asyncio, sys
from pathlib import Path
from raydo.storage.blobs import FilesystemBackend

async def main() -> None:
    backend = FilesystemBackend(Path(sys.argv[1]))
    tag = sys.argv[2].encode()
    for i in range(40):
        async def body():
            yield tag * (1000 + i)
        await backend.put("shared", body(), http_metadata={}, custom_metadata={},
                          only_if=None, max_bytes=10**9)
    await backend.aclose()

asyncio.run(main())
"""


async def test_processes_sharing_a_bucket_see_whole_objects(tmp_path: Path) -> None:
    import subprocess
    import sys

    from raydo.storage.blobs import FilesystemBackend

    root = tmp_path / "bucket"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(root), tag], cwd=REPO)
        for tag in ("a", "b")
    ]
    backend = FilesystemBackend(root)
    seen = 0
    while any(w.poll() is None for w in writers) or seen == 0:
        found = await backend.get("shared", range=None, only_if=None)
        if found is not None:
            meta, body, _ = found
            assert body is not None
            data = b"".join([chunk async for chunk in body])
            assert len(data) == meta.size
            assert hashlib.md5(data).hexdigest() == meta.etag
            assert data == data[:1] * len(data)  # one writer's body, whole
            seen += 1
        await asyncio.sleep(0)
    await backend.aclose()
    assert [w.wait(60) for w in writers] == [0, 0]
    assert seen > 0
    # Every replaced body was removed: one file remains, the current one.
    assert len([p for p in (root / "objects").rglob("*") if p.is_file()]) == 1
    assert list((root / "tmp").iterdir()) == []


_CREATOR = """
import asyncio, sys
from pathlib import Path
from raydo.storage.blobs import Conditions, FilesystemBackend

async def main() -> None:
    backend = FilesystemBackend(Path(sys.argv[1]))
    async def body():
        yield sys.argv[2].encode()
    stored = await backend.put("once", body(), http_metadata={}, custom_metadata={},
                               only_if=Conditions(etag_does_not_match="*"), max_bytes=100)
    print("won" if stored is not None else "lost")
    await backend.aclose()

asyncio.run(main())
"""


async def test_create_only_puts_racing_across_processes_have_one_winner(tmp_path: Path) -> None:
    import subprocess
    import sys

    from raydo.storage.blobs import FilesystemBackend

    root = tmp_path / "bucket"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATOR, str(root), f"writer {i}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
        )
        for i in range(6)
    ]
    answers = [child.communicate(timeout=60)[0].decode().strip() for child in children]
    assert sorted(answers) == ["lost"] * 5 + ["won"]
    winner = answers.index("won")
    backend = FilesystemBackend(root)
    found = await backend.get("once", range=None, only_if=None)
    assert found is not None and found[1] is not None
    data = b"".join([chunk async for chunk in found[1]])
    await backend.aclose()
    assert data == f"writer {winner}".encode()
    # The losers' bodies are gone too.
    assert len([p for p in (root / "objects").rglob("*") if p.is_file()]) == 1


# ---- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "key", "reason"),
    [
        ('backend = "ftp"', "backend", "one of 'filesystem', 's3'"),
        ('backend = "s3"\nendpoint_url = "ftp://x"', "endpoint_url", "http"),
        ('endpoint_url = "http://127.0.0.1:9000"', "endpoint_url", 'backend = "s3"'),
        ('s3_bucket = "b"', "s3_bucket", 'backend = "s3"'),
        ('backend = "s3"\ns3_bucket = "../b"', "s3_bucket", "S3 bucket name"),
        ('presign_secret_env = "NOT-A-NAME"', "presign_secret_env", "environment variable"),
        ('presign_secret = "x"', "presign_secret", "unknown key"),
    ],
)
def test_bucket_config_mistakes_are_named(
    tmp_path: Path, lines: str, key: str, reason: str
) -> None:
    config = tmp_path / "raydo.toml"
    config.write_text(
        f'name = "a"\nmain = "app:app"\n[[r2_buckets]]\nbinding = "F"\nbucket_name = "b"\n{lines}\n'
    )
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert error.value.key == f"r2_buckets[0].{key}"
    assert reason in error.value.reason


def test_bucket_config_defaults(tmp_path: Path) -> None:
    config = tmp_path / "raydo.toml"
    config.write_text(
        'name = "a"\nmain = "app:app"\n[[r2_buckets]]\nbinding = "F"\nbucket_name = "b"\n'
    )
    assert load_config(config).r2_buckets == (
        {
            "binding": "F",
            "bucket_name": "b",
            "backend": "filesystem",
            "endpoint_url": None,
            "region": None,
            "s3_bucket": None,
            "presign_secret_env": None,
        },
    )


# ---- several gateway processes, objects in Ray hosts --------------------------------------

_SIGNER = """
import sys
from pathlib import Path
from raydo.bindings.r2._presign import Signer

signer = Signer("FILES", "files", secret_env=None, secret_file=Path(sys.argv[1]))
print(signer.signature("GET", "k", 1))
"""


def test_processes_racing_to_make_the_secret_agree(tmp_path: Path) -> None:
    import subprocess
    import sys

    secret = tmp_path / "bucket" / "presign.key"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _SIGNER, str(secret)], cwd=REPO, stdout=subprocess.PIPE
        )
        for _ in range(6)
    ]
    signatures = {child.communicate(timeout=60)[0] for child in children}
    assert len(signatures) == 1 and all(child.returncode == 0 for child in children)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert [p.name for p in secret.parent.iterdir()] == ["presign.key"]  # no drafts left


@pytest.mark.ray
def test_gateway_processes_and_hosts_share_a_bucket(
    gateway: Callable[..., Any], tmp_path: Path
) -> None:
    server = gateway(r2_app(tmp_path, "filesystem"), workers=2)

    def fresh() -> httpx.Client:  # a new connection each time, so both workers answer
        return httpx.Client(base_url=server.url, timeout=60)

    urls = []
    for i in range(8):
        with fresh() as http:
            assert http.put("/o", params={"key": f"k{i}"}, content=f"v{i}").status_code == 200
            reply = http.post("/presign", params={"key": f"k{i}"})
            urls.append(reply.json()["url"])
    # Every URL, whichever process signed it, is good in every process.
    for i, url in enumerate(urls * 2):
        with fresh() as http:
            assert http.get(url).content == f"v{i % 8}".encode()

    # An object in a Ray host writes through its own env; the gateways read it.
    with fresh() as http:
        stored = http.post("/archive", params={"key": "from-host", "text": "hello"}).json()
        assert stored["etag"] == hashlib.md5(b"hello").hexdigest()
    for _ in range(4):
        with fresh() as http:
            assert http.get("/o", params={"key": "from-host"}).content == b"hello"

    # Concurrent writers in both processes: one whole body wins, the listing stays exact.
    def write(n: int) -> int:
        with fresh() as http:
            return http.put(
                "/o", params={"key": "contended"}, content=bytes([65 + n]) * 5000
            ).status_code

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(write, range(16))) == {200}
    with fresh() as http:
        final = http.get("/o", params={"key": "contended"})
        assert final.content == final.content[:1] * 5000
        assert final.headers["x-etag"] == hashlib.md5(final.content).hexdigest()
        keys = [o["key"] for o in http.get("/list").json()["objects"]]
        assert keys == sorted([*(f"k{i}" for i in range(8)), "from-host", "contended"])
