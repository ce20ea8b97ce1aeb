"""The store at start-up: both test servers honour conditional writes, and a store that is
malformed, out of reach or refusing our credentials is a clear error before serving."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import start_app
from raydo.storage.replication import (
    S3Store,
    StoreFailure,
    StoreUnusable,
    check_store,
    parse_store_url,
)
from tests.cluster import free_port

from .stores import StoreServer


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


async def test_both_servers_honour_conditional_puts(store_server: StoreServer, prefix: str) -> None:
    client = store_server.client()
    bucket, key = store_server.bucket, f"{prefix}/conditional"
    first = client.put_object(Bucket=bucket, Key=key, Body=b"1", IfNoneMatch="*")
    with pytest.raises(Exception) as again:
        client.put_object(Bucket=bucket, Key=key, Body=b"2", IfNoneMatch="*")
    assert _code(again.value) == "PreconditionFailed"
    with pytest.raises(Exception) as stale:
        client.put_object(Bucket=bucket, Key=key, Body=b"3", IfMatch='"0123456789abcdef"')
    assert _code(stale.value) == "PreconditionFailed"
    client.put_object(Bucket=bucket, Key=key, Body=b"4", IfMatch=first["ETag"])
    with pytest.raises(Exception) as replaced:
        client.put_object(Bucket=bucket, Key=key, Body=b"5", IfMatch=first["ETag"])
    assert _code(replaced.value) == "PreconditionFailed"
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"4"


async def test_a_usable_store_passes_the_start_check_and_leaves_nothing(
    store_server: StoreServer, prefix: str
) -> None:
    settings = store_server.settings(prefix)
    store = S3Store(settings)
    check_store(settings, store)
    assert store.keys(f"{prefix}/") == []
    assert store.create(f"{prefix}/x", b"a") and not store.create(f"{prefix}/x", b"b")
    assert store.get(f"{prefix}/x") == b"a"


async def test_every_call_of_the_store_against_both_servers(
    store_server: StoreServer, prefix: str
) -> None:
    """Lists past one page, ranged reads of short and missing keys, deletes of missing keys,
    and the request count (the cost model's unit) with every page of a LIST in it."""
    store = S3Store(store_server.settings(prefix))
    keys = [f"{prefix}/log/{n:016x}" for n in range(1_050)]
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(lambda key: store.create(key, key.encode()), keys))
    store.put(f"{prefix}/snap/short", b"ab")
    before = store.requests
    assert store.keys(f"{prefix}/log/") == keys
    assert store.requests - before == 2  # two pages of up to 1,000
    assert store.keys(f"{prefix}/log/", keys[1_000]) == keys[1_001:]
    assert store.keys(f"{prefix}/lo") == []  # a prefix is a folder, never part of a name
    assert store.head(keys[3], 8) == keys[3].encode()[:8]
    assert store.head(f"{prefix}/snap/short", 40) == b"ab"
    assert store.head(f"{prefix}/snap/none", 40) is None
    assert store.get(f"{prefix}/snap/none") is None
    store.put(f"{prefix}/snap/short", b"replaced")
    assert store.get(f"{prefix}/snap/short") == b"replaced"
    store.delete([*keys[:1_020], f"{prefix}/log/missing"])
    assert store.keys(f"{prefix}/log/") == keys[1_020:]
    store.delete([])
    gone = S3Store(
        StoreServer(store_server.kind, store_server.endpoint, "no-such").settings(prefix)
    )
    calls: list[Callable[[], object]] = [
        lambda: gone.get(keys[0]),
        lambda: gone.head(keys[0], 8),
        lambda: gone.delete(keys[:2]),
    ]
    for call in calls:
        with pytest.raises(StoreFailure, match="NoSuchBucket"):  # a failing store, not a miss
            call()


async def test_wrong_credentials_are_a_clear_error_before_serving(
    seaweedfs_store: StoreServer,
    replicated_app: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app_dir = replicated_app(seaweedfs_store)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(StoreUnusable, match="refused our credentials"):
        async with start_app(app_dir):
            pytest.fail("served with wrong credentials")


async def test_no_credentials_anywhere_is_a_clear_error_before_serving(
    replicated_app: Callable[..., Path],
    store_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    app_dir = replicated_app(StoreServer("nowhere", f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(StoreUnusable, match="found no credentials"):
        async with start_app(app_dir):
            pytest.fail("served without credentials")


async def test_an_unreachable_store_is_a_clear_error_before_serving(
    replicated_app: Callable[..., Path], store_credentials: None
) -> None:
    nowhere = StoreServer("nowhere", f"http://127.0.0.1:{free_port()}")
    app_dir = replicated_app(nowhere)
    with pytest.raises(StoreUnusable, match="cannot reach it"):
        async with start_app(app_dir):
            pytest.fail("served without a store")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://bucket/prefix", "s3://"),
        ("s3://", "bucket"),
        ("s3://Not_A_Bucket/x", "bucket"),
        ("s3://bucket/../up", "prefix"),
        ("s3://bucket/a b", "prefix"),
    ],
)
async def test_a_malformed_url_is_refused_by_name(url: str, why: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=why):
        parse_store_url(url)
    toml = tmp_path / "raydo.toml"
    toml.write_text(f'name = "a"\nmain = "app:app"\n[replication]\nurl = "{url}"\n')
    with pytest.raises(ConfigError, match=r"replication\.url: expected an s3://bucket/prefix"):
        load_config(tmp_path)


async def test_the_replication_table_is_read_with_its_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "raydo.toml"
    toml.write_text(
        'name = "a"\nmain = "app:app"\n[replication]\nurl = "s3://raydo-data/my-app/"\n'
        'mode = "async"\nretention_days = 7\n'
    )
    settings = load_config(tmp_path).replication
    assert settings is not None
    assert (settings.bucket, settings.prefix, settings.mode) == ("raydo-data", "my-app", "async")
    assert settings.retention_days == 7.0 and settings.sync_deadline_s == 10.0
    toml.write_text('name = "a"\nmain = "app:app"\n[replication]\nurl = "s3://b-1/p"\nmode = "x"\n')
    with pytest.raises(ConfigError, match=r"replication\.mode"):
        load_config(tmp_path)
    toml.write_text('name = "a"\nmain = "app:app"\n')
    assert load_config(tmp_path).replication is None
