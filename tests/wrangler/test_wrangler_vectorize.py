"""wrangler's ``vectorize`` entries: mapped onto ``[[vectorize]]`` (the shape, which wrangler
keeps with the index, given in the entry), refused clearly without one, and reached from a
Worker as ``env.VECTORIZE``; ``ai`` is listed as ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import start_app

WORKER = """\
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        index = self.env.VECTORIZE
        await index.upsert([
            {"id": "a", "values": [1.0, 0.0, 0.0], "metadata": {"k": "x"}},
            {"id": "b", "values": [0.0, 1.0, 0.0]},
        ])
        found = await index.query([0.9, 0.1, 0.0], {"topK": 1, "returnMetadata": "all"})
        return Response.json([[m.id, m.metadata] for m in found.matches])
"""

CONFIG = """\
{
  "name": "%s",
  "main": "src/worker.py",
  "ai": { "binding": "AI" },
  "vectorize": [
    { "binding": "VECTORIZE", "index_name": "docs"%s }
  ]
}
"""


def worker(folder: Path, shape: str = ', "dimensions": 3, "metric": "euclidean"') -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "worker.py").write_text(WORKER)
    (folder / "wrangler.jsonc").write_text(CONFIG % (f"vec-{folder.parent.name[-10:]}", shape))
    return folder


def test_vectorize_maps_with_its_shape(tmp_path: Path) -> None:
    config = load_config(worker(tmp_path / "w"))
    (entry,) = config.vectorize
    assert (entry["binding"], entry["index_name"], entry["dimensions"], entry["metric"]) == (
        "VECTORIZE",
        "docs",
        3,
        "euclidean",
    )
    assert config.ignored == () and config.ai is not None and config.ai["binding"] == "AI"
    preset = load_config(worker(tmp_path / "p", ', "preset": "@cf/baai/bge-small-en-v1.5"'))
    assert preset.vectorize[0]["dimensions"] == 384


def test_an_index_without_a_shape_says_where_it_goes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(worker(tmp_path / "w", ""))
    assert (info.value.key, info.value.line) == ("vectorize[0]", 5)
    assert 'add "dimensions" and "metric"' in str(info.value)


async def test_a_worker_queries_its_index(tmp_path: Path) -> None:
    async with start_app(worker(tmp_path / "w")) as app:
        assert (await app.http.get("/")).json() == [["a", {"k": "x"}]]
