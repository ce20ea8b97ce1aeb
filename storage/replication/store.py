"""The S3-compatible store every object's log goes to: six blocking calls, one Protocol.

The calls block (boto3 does), so the shipper and restore run them on their own threads, never
on a host's event loop. :meth:`ObjectStore.create` is the one that fencing rests on: S3's
conditional ``PutObject`` with ``If-None-Match: *`` creates a key only if nobody has, atomically.
:func:`check_store` proves at start-up that the store is there, takes our credentials and
honours that condition, so a wrong setting fails before anything is served.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from raydo.storage.errors import StorageError

from .settings import ReplicationSettings


class StoreUnusable(StorageError):
    """The replication store cannot be used: out of reach, refusing us, or unable to fence."""


class StoreFailure(StorageError):
    """One call to the store failed (a timeout, a 5xx, the network): it may work again."""


class ObjectStore(Protocol):
    """What replication needs from a store (keys are full keys, prefix included)."""

    requests: int
    """Calls made so far (the cost model's unit, and what an idle object must not add to)."""

    def create(self, key: str, body: bytes) -> bool:
        """Store ``body`` at ``key`` unless the key exists (True), atomically; False if it did."""
        ...

    def put(self, key: str, body: bytes) -> None:
        """Store ``body`` at ``key``, replacing what is there."""
        ...

    def get(self, key: str) -> bytes | None:
        """The body at ``key``, or None when there is none."""
        ...

    def head(self, key: str, length: int) -> bytes | None:
        """The first ``length`` bytes at ``key`` (a ranged GET), or None when there is none."""
        ...

    def keys(self, prefix: str, start_after: str | None = None) -> list[str]:
        """Every key under ``prefix`` (after ``start_after``), in ascending order."""
        ...

    def delete(self, keys: list[str]) -> None:
        """Remove ``keys`` (missing ones are fine)."""
        ...


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


class S3Store:
    """An :class:`ObjectStore` on S3 through boto3 (one client, shared by threads)."""

    def __init__(self, settings: ReplicationSettings, *, connect_timeout: float = 5.0) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.requests = 0
        self._count = threading.Lock()
        self._connect_timeout = connect_timeout
        self._client_: Any = None
        self._make = threading.Lock()

    def _client(self) -> Any:
        if self._client_ is None:
            with self._make:
                if self._client_ is None:
                    import boto3
                    from botocore.config import Config

                    settings = self.settings
                    self._client_ = boto3.session.Session().client(
                        "s3",
                        endpoint_url=settings.endpoint_url,
                        region_name=settings.region or "us-east-1",
                        config=Config(
                            s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
                            retries={"max_attempts": 2, "mode": "standard"},
                            connect_timeout=self._connect_timeout,
                            read_timeout=30,
                            max_pool_connections=32,
                        ),
                    )
        return self._client_

    def _call(self, operation: str, **kwargs: Any) -> Any:
        with self._count:
            self.requests += 1
        method = getattr(self._client(), operation)
        try:
            return method(Bucket=self.bucket, **kwargs)
        except Exception as exc:
            if _code(exc) in ("PreconditionFailed", "NoSuchKey", "404", "NotFound"):
                raise
            raise StoreFailure(f"the replication store failed {operation}: {exc}") from exc

    def create(self, key: str, body: bytes) -> bool:
        try:
            self._call("put_object", Key=key, Body=body, IfNoneMatch="*")
        except StoreFailure as exc:
            cause = exc.__cause__
            if cause is not None and _status(cause) in (409, 412):
                return False  # 409: a concurrent conditional write to the same key
            raise
        except Exception as exc:
            if _code(exc) == "PreconditionFailed":
                return False
            raise
        return True

    def put(self, key: str, body: bytes) -> None:
        self._call("put_object", Key=key, Body=body)

    def get(self, key: str) -> bytes | None:
        try:
            response = self._call("get_object", Key=key)
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        body: bytes = response["Body"].read()
        return body

    def head(self, key: str, length: int) -> bytes | None:
        try:
            response = self._call("get_object", Key=key, Range=f"bytes=0-{length - 1}")
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        body: bytes = response["Body"].read()
        return body[:length]

    def keys(self, prefix: str, start_after: str | None = None) -> list[str]:
        return list(self._iter_keys(prefix, start_after))

    def _iter_keys(self, prefix: str, start_after: str | None) -> Iterator[str]:
        args: dict[str, Any] = {"Prefix": prefix}
        if start_after is not None:
            args["StartAfter"] = start_after
        while True:
            response = self._call("list_objects_v2", **args)
            for item in response.get("Contents") or []:
                yield str(item["Key"])
            if not response.get("IsTruncated"):
                return
            args.pop("StartAfter", None)
            args["ContinuationToken"] = response["NextContinuationToken"]

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            response = self._call(
                "delete_objects",
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise StoreFailure(f"the store refused to delete {first.get('Key')!r}")


def check_store(settings: ReplicationSettings, store: ObjectStore | None = None) -> None:
    """Prove the store usable before serving, or raise :class:`StoreUnusable` saying why.

    In order: the bucket answers (reachable, credentials taken); a probe key is created with
    ``If-None-Match: *``; creating it again must be refused (a store that ignores the
    condition cannot fence two writers); the probe is removed.
    """
    where = f"replication store {settings.url}" + (
        f" at {settings.endpoint_url}" if settings.endpoint_url else ""
    )
    s3 = store if store is not None else S3Store(settings, connect_timeout=3.0)
    probe = settings.key("_raydo", f"probe-{secrets.token_hex(8)}")
    try:
        if not s3.create(probe, b"probe"):
            raise StoreUnusable(f"{where}: a new probe key already existed")
        again = s3.create(probe, b"probe")
        s3.delete([probe])
    except StoreUnusable:
        raise
    except Exception as exc:  # noqa: BLE001 - every cause becomes one clear refusal
        cause = exc.__cause__ if isinstance(exc, StoreFailure) and exc.__cause__ else exc
        status, code = _status(cause), _code(cause)
        if status == 403 or code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
            why = f"the store refused our credentials ({code or status})"
        elif code == "NoSuchBucket":
            why = f"there is no bucket {settings.bucket!r}"
        elif status == 0:
            why = f"cannot reach it: {cause}"
        else:
            why = f"it answered {status} {code}: {cause}"
        raise StoreUnusable(f"{where}: {why}") from None
    if again:
        raise StoreUnusable(
            f"{where}: it ignores If-None-Match on PutObject, so it cannot fence two writers"
            " of one object; use a store that supports conditional writes"
        )
