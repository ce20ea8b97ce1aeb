"""Every blob bucket call over HTTP, with the key always in the query (never the path)."""

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from raydo.bindings.r2 import R2Object, R2ObjectBody
from raydo.storage.blobs import BlobError


def described(obj: R2Object) -> dict[str, Any]:
    return {
        "key": obj.key,
        "size": obj.size,
        "etag": obj.etag,
        "http_etag": obj.http_etag,
        "version": obj.version,
        "uploaded": obj.uploaded.isoformat(),
        "http_metadata": obj.http_metadata,
        "custom_metadata": obj.custom_metadata,
        "range": obj.range,
    }


def bucket(request: Request) -> Any:
    return getattr(request.state.env, request.query_params.get("bucket", "FILES"))


def only_if(request: Request) -> dict[str, Any] | None:
    found = {}
    if "if-match" in request.headers:
        found["etag_matches"] = request.headers["if-match"]
    if "if-none-match" in request.headers:
        found["etag_does_not_match"] = request.headers["if-none-match"]
    return found or None


async def put(request: Request) -> Response:
    kind = request.headers.get("content-type")
    http = {"content_type": kind} if kind else {}
    custom = {k[len("x-meta-") :]: v for k, v in request.headers.items() if k.startswith("x-meta-")}
    stored = await bucket(request).put(
        request.query_params["key"],
        request.stream(),
        http_metadata=http,
        custom_metadata=custom,
        only_if=only_if(request),
    )
    if stored is None:
        return JSONResponse({"error": "precondition_failed"}, status_code=412)
    return JSONResponse(described(stored))


async def get(request: Request) -> Response:
    q = request.query_params
    wanted = {name: int(q[name]) for name in ("offset", "length", "suffix") if name in q}
    found = await bucket(request).get(q["key"], range=wanted or None, only_if=only_if(request))
    if found is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    if not isinstance(found, R2ObjectBody):
        return JSONResponse(described(found), status_code=412)
    headers = {"x-etag": found.etag, "x-size": str(found.size)}
    if found.range is not None:
        headers["x-range"] = f"{found.range['offset']},{found.range['length']}"
    found.write_http_metadata(headers)
    return StreamingResponse(found.body, headers=headers)


async def head(request: Request) -> Response:
    found = await bucket(request).head(request.query_params["key"])
    if found is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse(described(found))


async def delete(request: Request) -> Response:
    if request.method == "POST":
        await bucket(request).delete(await request.json())
    else:
        await bucket(request).delete(request.query_params["key"])
    return Response(status_code=204)


async def listing(request: Request) -> Response:
    q = request.query_params
    page = await bucket(request).list(
        prefix=q.get("prefix", ""),
        delimiter=q.get("delimiter"),
        cursor=q.get("cursor"),
        start_after=q.get("start_after"),
        limit=int(q.get("limit", "1000")),
        include=q.getlist("include"),
    )
    return JSONResponse(
        {
            "objects": [described(o) for o in page.objects],
            "delimited_prefixes": page.delimited_prefixes,
            "truncated": page.truncated,
            "cursor": page.cursor,
        }
    )


async def multipart(request: Request) -> Response:
    q = request.query_params
    step = request.path_params["step"]
    files = bucket(request)
    if step == "create":
        upload = await files.create_multipart_upload(
            q["key"], custom_metadata={"kind": "multipart"}
        )
        return JSONResponse({"upload_id": upload.upload_id})
    upload = files.resume_multipart_upload(q["key"], q["upload_id"])
    if step == "part":
        part = await upload.upload_part(int(q["n"]), request.stream())
        return JSONResponse({"part_number": part.part_number, "etag": part.etag})
    if step == "complete":
        return JSONResponse(described(await upload.complete(await request.json())))
    await upload.abort()
    return Response(status_code=204)


async def presign(request: Request) -> Response:
    q = request.query_params
    url = bucket(request).create_presigned_url(
        q["key"],
        q.get("method", "GET"),
        int(q.get("expires_in", "3600")),
        content_type=q.get("content_type"),
    )
    return JSONResponse({"url": url})


async def archive(request: Request) -> Response:
    stub = request.state.env.ARCHIVER.get_by_name("a")
    q = request.query_params
    if request.method == "POST":
        return JSONResponse({"etag": await stub.archive(q["key"], q["text"])})
    return JSONResponse({"text": await stub.recall(q["key"])})


async def blob_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BlobError)
    return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=400)


app = Starlette(
    routes=[
        Route("/o", put, methods=["PUT"]),
        Route("/o", get, methods=["GET"]),
        Route("/o", delete, methods=["DELETE"]),
        Route("/head", head),
        Route("/delete", delete, methods=["POST"]),
        Route("/list", listing),
        Route("/mpu/{step}", multipart, methods=["POST", "PUT"]),
        Route("/presign", presign, methods=["POST"]),
        Route("/archive", archive, methods=["GET", "POST"]),
    ],
    exception_handlers={BlobError: blob_error},
)
