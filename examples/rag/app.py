"""Retrieval-augmented answers over your documents, with ``env.AI`` and ``env.VECTORIZE``.

* ``POST /documents`` ``{"id", "title"?, "text"}``: the text is cut into overlapping chunks of
  words, each embedded (``@cf/baai/bge-small-en-v1.5``) and stored with its document, position
  and text as metadata (ids ``<document>:<position>``);
* ``GET /search?q=...&doc=...&top_k=5``: the chunks closest to ``q``, only ``doc``'s when given
  (a metadata filter, applied before top-k);
* ``GET /ask?q=...&doc=...``: the best chunks sent with the question to the text model, its
  answer streamed back as Workers AI's server-sent events;
* ``GET /``: a page to try it (``static/index.html``, no build step).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from raydo.bindings.vectorize import VectorizeError

EMBEDDING = "@cf/baai/bge-small-en-v1.5"
TEXT_MODEL = "@cf/meta/llama-3.1-8b-instruct"
CHUNK_WORDS = 60
OVERLAP_WORDS = 15
MAX_DOCUMENT_CHARS = 1_000_000
MAX_QUESTION_CHARS = 2_000
PAGE = Path(__file__).parent / "static" / "index.html"
_DOC_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def chunks(text: str, size: int = CHUNK_WORDS, overlap: int = OVERLAP_WORDS) -> list[str]:
    """``text`` as windows of ``size`` words, each starting ``size - overlap`` words after the
    one before, so a sentence cut at one edge is whole in the next chunk."""
    words = text.split()
    step = size - overlap
    return [" ".join(words[i : i + size]) for i in range(0, max(len(words) - overlap, 1), step)]


async def _filterable(env: Any) -> None:
    """The ``doc`` metadata index, made once (a filter needs it)."""
    indexes = await env.VECTORIZE.list_metadata_indexes()
    if not any(i.property_name == "doc" for i in indexes):
        with contextlib.suppress(VectorizeError):  # another upload made it meanwhile
            await env.VECTORIZE.create_metadata_index("doc", "string")


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def upload(request: Request) -> Response:
    env = request.state.env
    try:
        body = await request.json()
    except ValueError:
        return _error("send JSON: {id, title?, text}")
    if not isinstance(body, dict):
        return _error("send JSON: {id, title?, text}")
    doc, text, title = body.get("id"), body.get("text"), body.get("title", "")
    if not (isinstance(doc, str) and _DOC_ID.fullmatch(doc)):
        return _error("id: 1 to 40 letters, digits, '_', '.' or '-'")
    if not (isinstance(text, str) and text.strip()) or len(text) > MAX_DOCUMENT_CHARS:
        return _error(f"text: a non-empty string of at most {MAX_DOCUMENT_CHARS} characters")
    if not isinstance(title, str) or len(title) > 200:
        return _error("title: a string of at most 200 characters")
    await _filterable(env)
    pieces = chunks(text)
    stored = 0
    for start in range(0, len(pieces), 100):  # env.AI embeds at most 100 texts a call
        batch = pieces[start : start + 100]
        emb = await env.AI.run(EMBEDDING, {"text": batch})
        vectors = [
            {
                "id": f"{doc}:{start + i}",
                "values": values,
                "metadata": {"doc": doc, "title": title, "position": start + i, "text": piece},
            }
            for i, (piece, values) in enumerate(zip(batch, emb["data"], strict=True))
        ]
        stored += (await env.VECTORIZE.upsert(vectors)).count
    return JSONResponse({"id": doc, "chunks": stored}, status_code=201)


async def _top_chunks(request: Request) -> list[dict[str, Any]] | JSONResponse:
    env = request.state.env
    q = request.query_params.get("q", "")
    if not q.strip() or len(q) > MAX_QUESTION_CHARS:
        return _error(f"q: a non-empty question of at most {MAX_QUESTION_CHARS} characters")
    try:
        top_k = int(request.query_params.get("top_k", "5"))
    except ValueError:
        return _error("top_k: an integer")
    if not 1 <= top_k <= 20:
        return _error("top_k: from 1 to 20")
    doc = request.query_params.get("doc")
    emb = await env.AI.run(EMBEDDING, {"text": q})
    found = await env.VECTORIZE.query(
        emb["data"][0],
        top_k=top_k,
        return_metadata="all",
        filter={"doc": doc} if doc else None,
    )
    return [
        {
            "id": m.id,
            "score": round(m.score, 4),
            "doc": m.metadata["doc"],
            "title": m.metadata.get("title", ""),
            "position": m.metadata["position"],
            "text": m.metadata["text"],
        }
        for m in found.matches
    ]


async def search(request: Request) -> Response:
    top = await _top_chunks(request)
    if isinstance(top, JSONResponse):
        return top
    return JSONResponse({"matches": top})


async def ask(request: Request) -> Response:
    top = await _top_chunks(request)
    if isinstance(top, JSONResponse):
        return top
    context = "\n\n".join(f"[{c['doc']} #{c['position']}] {c['text']}" for c in top)
    messages = [
        {
            "role": "system",
            "content": "Answer from the context below only; name the [document #chunk] you"
            " used. If the context does not say, say so.\n\nContext:\n" + context,
        },
        {"role": "user", "content": request.query_params["q"]},
    ]
    stream = await request.state.env.AI.run(TEXT_MODEL, {"messages": messages, "stream": True})
    return StreamingResponse(stream, media_type="text/event-stream")


async def page(request: Request) -> Response:
    return FileResponse(PAGE, media_type="text/html")


app = Starlette(
    routes=[
        Route("/", page),
        Route("/documents", upload, methods=["POST"]),
        Route("/search", search),
        Route("/ask", ask),
    ]
)
