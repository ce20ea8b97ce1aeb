"""What ``[replication]`` in ``raydo.toml`` says, as plain picklable data hosts receive."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: S3's rule for bucket names (lowercase letters, digits, dots and hyphens, 3 to 63).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

MODES = ("sync", "async")


def parse_store_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as ``(bucket, prefix)`` (the prefix without slashes at its ends,
    "" when there is none); ValueError saying what is wrong otherwise."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "s3":
        raise ValueError(f"expected s3://bucket/prefix, got {url!r}")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"{bucket!r} is not an S3 bucket name (3 to 63 of a-z, 0-9, '.', '-')")
    prefix = prefix.strip("/")
    if prefix:
        for part in prefix.split("/"):
            if not _PREFIX_PART.fullmatch(part) or part in (".", ".."):
                raise ValueError(
                    f"prefix part {part!r} of {url!r} is not made of A-Z, a-z, 0-9, '.', '_', '-'"
                )
    return bucket, prefix


@dataclass(frozen=True, slots=True)
class ReplicationSettings:
    """Where every object's log goes and how the output gate waits for it.

    ``mode`` is ``"sync"`` (an event's output leaves once its commit is in the store; past
    ``sync_deadline_s`` it becomes an error and the object is reset) or ``"async"`` (outputs
    leave at once; commits ship every ``async_interval_s``, which is the window a lost node
    can lose). Under ``sync``, ``host_log`` groups the commits of all of a host's objects
    into one store write per round. Credentials come from boto3's usual chain
    (``AWS_ACCESS_KEY_ID`` ...), as for the blob store's S3 backend.
    """

    bucket: str
    prefix: str = ""
    mode: str = "sync"
    retention_days: float = 30.0
    endpoint_url: str | None = None
    region: str | None = None
    sync_deadline_s: float = 10.0
    async_interval_s: float = 1.0
    host_log: bool = True
    """``sync``: acknowledge commits from one stream per host (:mod:`.journal`), each store
    write carrying many objects' commits; False: every round writes its object's own log."""
    write_back_s: float = 30.0
    """Under a host log, the longest an object's commits stay only in its host's stream
    before they are written into the object's own log."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"replication mode must be 'sync' or 'async', not {self.mode!r}")

    @classmethod
    def from_url(cls, url: str, **options: object) -> ReplicationSettings:
        bucket, prefix = parse_store_url(url)
        return cls(bucket, prefix, **options)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, *parts: str) -> str:
        """A key in the store under the prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)
