"""What ``[[r2_buckets]]`` adds to an app: one ``env`` binding per bucket, no objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from raydo.actors import PlatformContext, PlatformSpec
from raydo.bindings import Plan
from raydo.storage.blobs import BlobBackend, FilesystemBackend, S3Backend

from ._bucket import R2Bucket
from ._presign import Signer

#: Folder of every filesystem bucket, under the storage root: ``_r2/<bucket_name>/``.
BUCKETS_FOLDER = "_r2"


def plan(entries: Iterable[Mapping[str, object]]) -> Plan:
    """One ``env`` binding per ``[[r2_buckets]]`` entry; buckets need no internal objects."""
    return Plan(
        platform=[
            PlatformSpec(str(entry["binding"]), "raydo.bindings.r2:make_bucket", dict(entry))
            for entry in entries
        ]
    )


def make_bucket(ctx: PlatformContext) -> R2Bucket:
    """The factory every process calls: builds the bucket and its backend (no I/O yet)."""
    options = ctx.options
    bucket_name = str(options["bucket_name"])
    root = Path(ctx.runtime.storage_root) / BUCKETS_FOLDER / bucket_name
    backend: BlobBackend
    if options.get("backend", "filesystem") == "s3":
        backend = S3Backend(
            bucket=str(options.get("s3_bucket") or bucket_name),
            spool=root / "tmp",
            endpoint_url=_optional(options.get("endpoint_url")),
            region=_optional(options.get("region")),
        )
    else:
        backend = FilesystemBackend(root, full_sync=ctx.runtime.durability == "full")
    signer = Signer(
        ctx.name,
        bucket_name,
        secret_env=_optional(options.get("presign_secret_env")),
        secret_file=root / "presign.key",
    )
    return R2Bucket(
        binding=ctx.name,
        bucket_name=bucket_name,
        backend=backend,
        limits=ctx.runtime.limits,
        signer=signer,
    )


def _optional(value: object) -> str | None:
    return None if value is None else str(value)
