"""The Fetch-standard faces a Worker builds and reads itself: ``FormData`` and ``Blob`` as
bodies (their content types byte for byte), ``await request.formData()``, ``request.cf``,
and the Worker ``ctx``'s ``pass_through_on_exception``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from raydo.gateway.testing import start_app
from workers import Blob, File, FormData, Request, Response
from workers._context import Context


async def test_a_form_data_body_is_multipart_with_its_boundary_and_reads_back() -> None:
    form = FormData({"name": "Adä"})
    form.append("tag", "a")
    form.append("tag", "b")
    form.append("upload", Blob([b"\x00\r\n\x01\n\xff"], type="Application/Octet-Stream"), "f.bin")
    request = Request("https://example.com/form", method="post", body=form)
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    assert request.method == "POST"
    parsed = await request.formData()
    assert parsed.get("name") == "Adä"
    assert parsed.getAll("tag") == ["a", "b"]
    upload = parsed.get("upload")
    assert isinstance(upload, File)
    assert (upload.name, await upload.bytes(), upload.type) == (
        "f.bin",
        b"\x00\r\n\x01\n\xff",
        "application/octet-stream",
    )
    assert request.bodyUsed
    with pytest.raises(TypeError, match="already been used"):
        await request.text()


async def test_an_urlencoded_form_reads_as_form_data_and_other_bodies_are_refused() -> None:
    request = Request(
        "https://example.com/",
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=b"a=1&b=&a=2",
    )
    form = await request.formData()
    assert (form.getAll("a"), form["b"], form.has("c"), len(form)) == (["1", "2"], "", False, 2)
    with pytest.raises(TypeError, match="needs a form body"):
        await Request("https://example.com/", method="POST", body="x").formData()


async def test_form_data_edits_as_the_platform_does() -> None:
    form = FormData([("a", "1"), ("a", "2"), ("b", 3)])
    assert form["b"] == "3"  # values other than Blobs become strings
    form.set("a", "only")
    form.delete("b")
    assert form.entries() == [("a", "only")]
    with pytest.raises(KeyError):
        del form["missing"]


async def test_a_blob_body_takes_its_type_and_a_blob_without_one_sends_none() -> None:
    blob = Blob(["héllo ", b"w", Blob(["orld"])], type="Text/Plain")
    assert (blob.size, blob.type, await blob.text()) == (12, "text/plain", "héllo world")
    assert await blob.slice(0, 1).bytes() == b"h"
    typed = Response(blob)
    assert typed.headers["content-type"] == "text/plain"
    assert await typed.bytes() == "héllo world".encode()
    assert "content-type" not in Response(Blob([b"x"])).headers
    with pytest.raises(TypeError, match="Blob parts are str, bytes or Blob"):
        Blob([1])  # type: ignore[list-item]


async def test_string_and_json_bodies_get_the_fetch_standard_types_byte_for_byte() -> None:
    assert Response("x").headers["content-type"] == "text/plain;charset=UTF-8"
    assert Request("https://e.com/", method="POST", body="x").headers["content-type"] == (
        "text/plain;charset=UTF-8"
    )
    data = Response.json({"a": "ü", "b": [1, 2]})
    assert data.headers["content-type"] == "application/json"
    assert await data.bytes() == '{"a":"ü","b":[1,2]}'.encode()
    assert "content-type" not in Response(b"raw").headers
    assert "content-type" not in Response(None).headers
    with pytest.raises(TypeError, match="unsupported body type dict"):
        Response({"a": 1})


def test_request_cf_is_an_empty_mapping() -> None:
    request = Request("https://example.com/")
    assert request.cf == {}
    assert Request(request).cf == {}


async def test_pass_through_on_exception_is_accepted_in_both_spellings() -> None:
    ctx = Context()
    ctx.pass_through_on_exception()  # no origin behind raydo: accepted, nothing to do
    ctx.passThroughOnException()
    assert ctx.pass_through_on_exception == ctx.passThroughOnException


STREAMING_WORKER = """\
import asyncio

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        async def events():
            for n in range(3):
                await asyncio.sleep(0)
                yield f"data: {n}\\n\\n"
            yield b"data: [DONE]\\n\\n"

        if request.url.endswith("/read"):
            return Response(await Response(events()).text())
        if request.url.endswith("/bad"):
            async def numbers():
                yield 1

            return Response(numbers())
        return Response(events(), headers={"content-type": "text/event-stream"})
"""


async def test_a_streamed_body_goes_out_chunk_by_chunk_as_it_comes(tmp_path: Path) -> None:
    folder = tmp_path / "streams"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "worker.py").write_text(STREAMING_WORKER)
    (folder / "wrangler.jsonc").write_text('{"name": "streams", "main": "src/worker.py"}\n')
    expected = "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
    async with start_app(folder) as app:
        async with app.http.stream("GET", "/") as reply:
            assert reply.headers["content-type"] == "text/event-stream"
            assert "content-length" not in reply.headers
            chunks = [chunk async for chunk in reply.aiter_text()]
        assert "".join(chunks) == expected
        read = await app.http.get("/read")  # a stream read whole in the Worker
        assert (read.status_code, read.text) == (200, expected)
        # A chunk of another type cuts the stream (its head is already out): the client sees
        # an incomplete body, never a whole one.
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            await app.http.get("/bad")
