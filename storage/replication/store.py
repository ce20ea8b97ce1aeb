"""The S3-compatible store every object's log goes to: six blocking calls, one Protocol.

The calls block until the store answers (the client waits without holding the GIL), so the
shipper and restore run them on their own threads, never on a host's event loop.
:meth:`ObjectStore.create` is the one that fencing rests on: S3's conditional ``PutObject``
with ``If-None-Match: *`` creates a key only if nobody has, atomically.
:func:`check_store` proves at start-up that the store is there, takes our credentials and
honours that condition, so a wrong setting fails before anything is served.
"""

from __future__ import annotations

import re
import secrets
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from raydo.storage.errors import StorageError

from .settings import ReplicationSettings

if TYPE_CHECKING:
    from obstore.store import S3Config


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

    def get(self, key: str) -> bytes | memoryview | None:
        """The body at ``key``, or None when there is none."""
        ...

    def head(self, key: str, length: int) -> bytes | None:
        """The first ``length`` bytes at ``key`` (a ranged GET), or None when there is none."""
        ...

    def read_range(self, key: str, offset: int, length: int) -> bytes | None:
        """``length`` bytes at ``key`` from ``offset`` (fewer when it is shorter), or None
        when there is no ``key``."""
        ...

    def keys(self, prefix: str, start_after: str | None = None) -> list[str]:
        """Every key in the folder ``prefix`` (``a/b/`` holds ``a/b/c``, never ``a/bc``) after
        ``start_after``, in ascending order."""
        ...

    def delete(self, keys: list[str]) -> None:
        """Remove ``keys`` (missing ones are fine)."""
        ...


_STATUS = re.compile(r"status code: (\d{3})")
_ERROR_CODE = re.compile(r"<Code>([^<]+)</Code>")


def _status(exc: BaseException) -> int:
    """The HTTP status the store answered ``exc`` with; 0 when it never answered."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    if isinstance(exc, PermissionDeniedError):
        return 403
    if isinstance(exc, UnauthenticatedError):
        return 401
    found = _STATUS.search(str(exc))
    return int(found[1]) if found else 0


def _code(exc: BaseException) -> str:
    """The S3 error code in the store's answer (``NoSuchBucket`` ...), "" when none."""
    found = _ERROR_CODE.search(str(exc))
    return found[1] if found else ""


class S3Store:
    """An :class:`ObjectStore` on S3 through obstore (Rust's ``object_store``): one client,
    shared by threads, which waits for the network without holding the GIL, so a host's
    event loop keeps running while its rounds are in flight. Credentials come from boto3's
    chain (environment, config files, instance roles), refreshed as boto3 refreshes them."""

    def __init__(self, settings: ReplicationSettings, *, connect_timeout: float = 5.0) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.requests = 0
        self._count = threading.Lock()
        self._connect_timeout = connect_timeout
        self._store_: Any = None
        self._make = threading.Lock()

    def _store(self) -> Any:
        if self._store_ is None:
            with self._make:
                if self._store_ is None:
                    self._store_ = self._build()
        return self._store_

    def _build(self) -> Any:
        import boto3
        from obstore.auth.boto3 import Boto3CredentialProvider
        from obstore.store import S3Store as Client

        settings = self.settings
        session = boto3.session.Session()
        try:
            # Asked again every few minutes: botocore refreshes a role's credentials well
            # before they expire, but only when asked.
            credentials = Boto3CredentialProvider(session, ttl=timedelta(minutes=5))
        except ValueError:
            raise StoreUnusable(
                f"replication store {settings.url}: found no credentials"
                " (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, or an instance role)"
            ) from None
        endpoint = settings.endpoint_url
        config: S3Config = {
            "region": settings.region or session.region_name or "us-east-1",
            "virtual_hosted_style_request": endpoint is None,
        }
        if endpoint is not None:
            config["endpoint"] = endpoint
        return Client(
            settings.bucket,
            config=config,
            client_options={
                "allow_http": endpoint is not None and endpoint.startswith("http://"),
                "connect_timeout": timedelta(seconds=self._connect_timeout),
                # A stalled answer fails in 30 s (as boto3's read timeout did); a whole call
                # may take longer, for a snapshot of gigabytes goes in one PUT.
                "read_timeout": timedelta(seconds=30),
                "timeout": timedelta(minutes=30),
            },
            # The shipper retries until a commit's deadline; the client's own retries only
            # smooth over a dropped connection.
            retry_config={
                "max_retries": 1,
                "retry_timeout": timedelta(seconds=10),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=50),
                    "max_backoff": timedelta(seconds=1),
                    "base": 2,
                },
            },
            credential_provider=credentials,
        )

    def _counted(self, calls: int = 1) -> Any:
        with self._count:
            self.requests += calls
        return self._store()

    def create(self, key: str, body: bytes) -> bool:
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        store = self._counted()
        try:
            obstore.put(store, key, body, mode="create", use_multipart=False)
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as exc:
            if _status(exc) in (409, 412):
                return False  # 409: a concurrent conditional write to the same key
            raise StoreFailure(f"the replication store failed a conditional put: {exc}") from exc
        return True

    def put(self, key: str, body: bytes) -> None:
        import obstore

        store = self._counted()
        try:
            obstore.put(store, key, body, use_multipart=False)
        except Exception as exc:
            raise StoreFailure(f"the replication store failed a put: {exc}") from exc

    def get(self, key: str) -> bytes | memoryview | None:
        import obstore

        store = self._counted()
        try:
            # A view of the client's buffer: a snapshot is not copied on its way to the file.
            return memoryview(obstore.get(store, key).bytes())
        except FileNotFoundError as exc:
            _no_bucket(exc, "get")
            return None
        except Exception as exc:
            raise StoreFailure(f"the replication store failed a get: {exc}") from exc

    def head(self, key: str, length: int) -> bytes | None:
        import obstore

        store = self._counted()
        try:
            return bytes(obstore.get_range(store, key, start=0, length=length))
        except FileNotFoundError as exc:
            _no_bucket(exc, "ranged get")
            return None
        except Exception as exc:
            if _status(exc) != 416:
                raise StoreFailure(f"the replication store failed a ranged get: {exc}") from exc
        # Shorter than ``length`` (a damaged entry): its reader is to say so, not the store.
        whole = self.get(key)
        return None if whole is None else bytes(whole[:length])

    def read_range(self, key: str, offset: int, length: int) -> bytes | None:
        import obstore

        store = self._counted()
        try:
            return bytes(obstore.get_range(store, key, start=offset, length=length))
        except FileNotFoundError as exc:
            _no_bucket(exc, "ranged get")
            return None
        except Exception as exc:
            if _status(exc) == 416:
                return b""  # shorter than asked: its reader says it is damaged
            raise StoreFailure(f"the replication store failed a ranged get: {exc}") from exc

    def keys(self, prefix: str, start_after: str | None = None) -> list[str]:
        import obstore

        store = self._counted()
        try:
            found = [
                str(meta["path"])
                for batch in obstore.list(store, prefix, offset=start_after, chunk_size=1000)
                for meta in batch
            ]
        except Exception as exc:
            raise StoreFailure(f"the replication store failed a list: {exc}") from exc
        # A LIST answers 1,000 keys at a time: count every page as a request.
        with self._count:
            self.requests += max(len(found) - 1, 0) // 1000
        return sorted(found)

    def delete(self, keys: list[str]) -> None:
        import obstore

        if not keys:
            return
        store = self._counted((len(keys) + 999) // 1000)
        try:
            obstore.delete(store, keys)
        except FileNotFoundError as exc:
            _no_bucket(exc, "delete")
        except Exception as exc:
            raise StoreFailure(f"the replication store failed a delete: {exc}") from exc


def _no_bucket(exc: FileNotFoundError, operation: str) -> None:
    """Raise when a 404 is the bucket's (every 404 is FileNotFoundError to the client): a
    bucket gone is a failing store, not a missing entry."""
    if _code(exc) == "NoSuchBucket":
        raise StoreFailure(f"the replication store failed a {operation}: {exc}") from exc


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
