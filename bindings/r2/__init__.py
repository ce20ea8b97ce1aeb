"""Blob buckets (``[[r2_buckets]]``, ``env.FILES``), shaped like Cloudflare R2.

::

    await env.FILES.put("avatars/ada.png", request.stream(), http_metadata={...})
    found = await env.FILES.get("avatars/ada.png")

``env.FILES`` is an :class:`R2Bucket` (``_bucket``) in every process that builds an ``env``;
what it answers with is in ``_objects``. It signs presigned URLs (``_presign``) that the
gateway serves itself (``_routes``, under ``/_raydo/r2/``); ``_plan`` turns the config
entries into bindings and builds each bucket's backend.
"""

from ._bucket import R2Bucket, R2MultipartUpload, R2UploadedPart
from ._objects import R2Object, R2ObjectBody, R2Objects
from ._plan import BUCKETS_FOLDER, make_bucket, plan
from ._presign import PresignError

__all__ = [
    "BUCKETS_FOLDER",
    "PresignError",
    "R2Bucket",
    "R2MultipartUpload",
    "R2Object",
    "R2ObjectBody",
    "R2Objects",
    "R2UploadedPart",
    "make_bucket",
    "plan",
]
