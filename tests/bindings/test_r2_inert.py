"""What presigned URLs serve can never run as the app (issue 12, items 5 and 9), over real
HTTP on both backends: a PUT URL's holder chooses no type or disposition the GET URL serves
inline, every answer carries ``nosniff`` and a sandboxing CSP, a signed content type is served
as signed and binds the PUT, absurd ranges are answered as HTTP says, and a put's upload time
is the one later reads see."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest

from raydo.gateway.testing import TestApp
from raydo.storage.blobs import InvalidArgument
from tests.bindings.test_r2 import app_dir, backend, s3_endpoint

__all__ = ["app_dir", "backend", "s3_endpoint"]  # the fixtures, shared with test_r2

INERT = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox; default-src 'none'",
}
MANY_DIGITS = "9" * 5000


async def presign(app: TestApp, key: str, method: str = "GET", **extra: str) -> str:
    reply = await app.http.post("/presign", params={"key": key, "method": method, **extra})
    assert reply.status_code == 200, reply.text
    url: str = reply.json()["url"]
    return url


def assert_inert(headers: httpx.Headers) -> None:
    for name, value in INERT.items():
        assert headers.get(name) == value, name


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("text/html", "application/octet-stream"),
        ("TEXT/HTML; charset=utf-8", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("application/xhtml+xml", "application/octet-stream"),
        ("text/xml", "application/octet-stream"),
        ("application/javascript", "application/octet-stream"),
        ("text/css", "application/octet-stream"),
        ("multipart/x-mixed-replace; boundary=x", "application/octet-stream"),
        ("nonsense", "application/octet-stream"),
        ("image/png", "image/png"),
        ("text/plain; charset=utf-8; x=<script>", "text/plain; charset=utf-8"),
    ],
)
async def test_a_put_urls_holder_never_chooses_what_runs_inline(
    app: TestApp, declared: str, served: str
) -> None:
    put_url = await presign(app, "u/evil", "PUT")
    stored = await app.http.put(
        put_url,
        content=b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        headers={"content-type": declared, "content-disposition": "inline"},
    )
    assert stored.status_code == 200, stored.text
    assert_inert(stored.headers)

    get_url = await presign(app, "u/evil")
    head_url = await presign(app, "u/evil", "HEAD")
    for answer in (await app.http.get(get_url), await app.http.head(head_url)):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == served
        assert answer.headers["content-disposition"] == "attachment"
        assert_inert(answer.headers)
    # The app itself still reads what was stored (it is trusted with its own bucket).
    found = await app.env.FILES.head("u/evil")
    assert found is not None and found.http_metadata["content_type"] == declared


async def test_a_stored_file_name_survives_as_an_attachments_name(app: TestApp) -> None:
    put_url = await presign(app, "u/report", "PUT")
    stored = await app.http.put(
        put_url,
        content=b"%PDF-1.4",
        headers={
            "content-type": "application/pdf",
            "content-disposition": 'inline; filename="../..\\etc/my report.pdf"',
        },
    )
    assert stored.status_code == 200, stored.text
    got = await app.http.get(await presign(app, "u/report"))
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''my%20report.pdf"


async def test_a_signed_content_type_is_served_inline_and_binds_the_put(app: TestApp) -> None:
    put_url = await presign(app, "u/avatar", "PUT", content_type="image/png")
    assert "&content-type=image%2Fpng&" in put_url

    other = await app.http.put(put_url, content=b"<html>", headers={"content-type": "text/html"})
    assert other.status_code == 403 and other.json()["error"] == "signature_mismatch"
    assert_inert(other.headers)
    assert await app.env.FILES.head("u/avatar") is None

    # No declared type: the signed one is stored; the same one, in any case, is accepted.
    assert (await app.http.put(put_url, content=b"\x89PNG")).status_code == 200
    found = await app.env.FILES.head("u/avatar")
    assert found is not None and found.http_metadata["content_type"] == "image/png"
    same = await app.http.put(put_url, content=b"\x89PNG2", headers={"content-type": "IMAGE/PNG"})
    assert same.status_code == 200
    found = await app.env.FILES.head("u/avatar")
    assert found is not None and found.http_metadata["content_type"] == "image/png"

    get_url = await presign(app, "u/avatar", content_type="image/png")
    got = await app.http.get(get_url)
    assert got.status_code == 200 and got.content == b"\x89PNG2"
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"] == "inline"
    assert_inert(got.headers)

    # The type is part of what is signed: changed, dropped or added, the URL is refused.
    html = quote("text/html", safe="")
    for tampered in (
        get_url.replace("content-type=image%2Fpng", f"content-type={html}"),
        get_url.replace("&content-type=image%2Fpng", ""),
        (await presign(app, "u/avatar")).replace("&signature=", f"&content-type={html}&signature="),
    ):
        refused = await app.http.get(tampered)
        assert refused.status_code == 403, tampered
        assert refused.json()["error"] == "signature_mismatch"
        assert_inert(refused.headers)


async def test_only_media_types_can_be_signed(app: TestApp) -> None:
    files = app.env.FILES
    for bad in ("text/html\r\nx-evil: 1", "html", "", "a/b; c", "x/" + "y" * 300, "a/b\n"):
        with pytest.raises(InvalidArgument, match="media type"):
            files.create_presigned_url("k", content_type=bad)
    assert "content-type=text%2Fplain%3B%20charset%3Dutf-8" in files.create_presigned_url(
        "k", content_type="text/plain; charset=utf-8"
    )


async def test_ranges_with_thousands_of_digits_are_answered_as_http_says(app: TestApp) -> None:
    await app.env.FILES.put("r/ten", b"0123456789")
    url = await presign(app, "r/ten")

    past = await app.http.get(url, headers={"range": f"bytes={MANY_DIGITS}-"})
    assert past.status_code == 416 and past.headers["content-range"] == "bytes */10"
    assert_inert(past.headers)
    to_huge_end = await app.http.get(url, headers={"range": f"bytes=2-{MANY_DIGITS}"})
    assert to_huge_end.status_code == 206 and to_huge_end.content == b"23456789"
    huge_suffix = await app.http.get(url, headers={"range": f"bytes=-{MANY_DIGITS}"})
    assert huge_suffix.status_code == 206 and huge_suffix.content == b"0123456789"
    zeros = await app.http.get(url, headers={"range": f"bytes={'0' * 5000}7-"})
    assert zeros.status_code == 206 and zeros.content == b"789"
    both = await app.http.get(url, headers={"range": f"bytes={MANY_DIGITS}-{MANY_DIGITS}"})
    assert both.status_code == 416
    # Digits other than ASCII's are not digits to a range.
    arabic = await app.http.get(url, headers={b"range": "bytes=\u0663-".encode()})
    assert arabic.status_code == 200 and arabic.content == b"0123456789"


async def test_a_puts_upload_time_is_what_reads_see(app: TestApp) -> None:
    files = app.env.FILES
    for i in range(5):
        key = f"t/{i}"
        stored = await files.put(key, b"x" * i)
        assert stored is not None
        head = await files.head(key)
        got = await files.get(key)
        listed = [o for o in (await files.list(prefix=key)).objects if o.key == key]
        assert head is not None and got is not None and len(listed) == 1
        assert stored.uploaded == head.uploaded == got.uploaded == listed[0].uploaded
        assert stored.uploaded.tzinfo is not None
        assert abs(stored.uploaded - datetime.now(UTC)).total_seconds() < 60
        if hasattr(got, "aclose"):
            await got.aclose()
        answer = (await app.http.put(await presign(app, key, "PUT"), content=b"v")).json()
        head = await files.head(key)
        assert head is not None
        assert datetime.fromisoformat(answer["uploaded"]) == head.uploaded
