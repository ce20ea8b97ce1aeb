"""The model binding (``[ai]``, ``env.AI``), embeddings in process: a tiny BERT-shaped ONNX
model and WordPiece tokenizer built in the test (tests/ai_models.py), loaded through the
production path from the app's ``models_dir``. Shapes, pooling, normalisation, batching,
truncation at 512 tokens, Workers AI's limits and hostile input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from raydo.bindings.ai import MAX_TEXTS, Ai, AiError, EmbeddingModel
from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import TestApp
from tests.ai_models import WORDS, build_model

SMALL = "@cf/baai/bge-small-en-v1.5"
TINY = "@cf/test/tiny-cls"


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    folder = app_copy("ai")
    build_model(folder / "models" / "bge-small-en-v1.5", hidden=32, layers=2)
    build_model(folder / "other" / "tiny", hidden=16, seed=1)
    return folder


def ai(app: TestApp) -> Ai:
    found: Ai = app.env.AI
    return found


def sentence(n: int, offset: int = 0) -> str:
    return " ".join(WORDS[(offset + i) % len(WORDS)] for i in range(n))


async def test_embeddings_have_workers_ai_shape_and_unit_length(app: TestApp) -> None:
    out = await ai(app).run(SMALL, {"text": ["the cat sat on the mat", "hello world"]})
    assert out["shape"] == [2, 32] and out["pooling"] == "mean"
    data = np.array(out["data"])
    assert data.shape == (2, 32)
    assert np.allclose(np.linalg.norm(data, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(data[0], data[1])
    # A string is one text.
    one = await ai(app).run(SMALL, {"text": "hello world"})
    assert one["shape"] == [1, 32] and np.allclose(one["data"][0], data[1], atol=1e-5)
    # The mapped model, with its own dimensions.
    tiny = await ai(app).run(TINY, {"text": "hello"})
    assert tiny["shape"] == [1, 16]
    assert ai(app).models == [SMALL, TINY]


async def test_pooling_mean_is_the_default_and_cls_differs(app: TestApp) -> None:
    texts = ["the orange cloud", "a story about a llama"]
    default = await ai(app).run(SMALL, {"text": texts})
    mean = await ai(app).run(SMALL, {"text": texts, "pooling": "mean"})
    cls = await ai(app).run(SMALL, {"text": texts, "pooling": "cls"})
    assert default["data"] == mean["data"]
    assert cls["pooling"] == "cls" and cls["shape"] == [2, 32]
    assert not np.allclose(np.array(cls["data"]), np.array(mean["data"]), atol=1e-3)
    assert np.allclose(np.linalg.norm(np.array(cls["data"]), axis=1), 1.0, atol=1e-5)


async def test_a_batch_equals_its_texts_one_by_one(app: TestApp) -> None:
    # Texts of different lengths: the batch pads the short ones, which must change nothing.
    texts = [sentence(n, offset=n) for n in (1, 3, 9, 30, 2)]
    for pooling in ("mean", "cls"):
        batch = np.array((await ai(app).run(SMALL, {"text": texts, "pooling": pooling}))["data"])
        for i, text in enumerate(texts):
            alone = (await ai(app).run(SMALL, {"text": text, "pooling": pooling}))["data"][0]
            assert np.allclose(batch[i], alone, atol=1e-5), (pooling, i)


async def test_texts_are_cut_to_512_tokens(app: TestApp) -> None:
    # Every word is one token; [CLS] and [SEP] take two of the 512.
    cut = sentence(510)
    longer = sentence(900)
    assert longer.startswith(cut + " ")
    out = await ai(app).run(SMALL, {"text": [cut, longer, sentence(509)]})
    data = np.array(out["data"])
    assert np.allclose(data[0], data[1], atol=1e-5)
    assert not np.allclose(data[0], data[2], atol=1e-4)
    model = EmbeddingModel(app.config.root / "models" / "bge-small-en-v1.5")
    assert model.tokenize([longer])["input_ids"].shape == (1, 512)


async def test_limits_and_hostile_input_are_clear_errors(app: TestApp) -> None:
    run = ai(app).run
    with pytest.raises(AiError, match=r"101 strings, more than the 100"):
        await run(SMALL, {"text": ["a"] * (MAX_TEXTS + 1)})
    assert (await run(SMALL, {"text": ["a"] * MAX_TEXTS}))["shape"] == [100, 32]
    with pytest.raises(AiError, match=r"text\[1\] is int, not a string"):
        await run(SMALL, {"text": ["a", 3]})
    with pytest.raises(AiError, match="empty list"):
        await run(SMALL, {"text": []})
    with pytest.raises(AiError, match="must be a string or a list of strings, got dict"):
        await run(SMALL, {"text": {"a": 1}})
    with pytest.raises(AiError, match="missing input 'text'"):
        await run(SMALL, {})
    with pytest.raises(AiError, match=r"unknown inputs \['texts'\]"):
        await run(SMALL, {"text": "a", "texts": "b"})
    with pytest.raises(AiError, match="pooling must be one of mean, cls, got 'max'"):
        await run(SMALL, {"text": "a", "pooling": "max"})
    with pytest.raises(AiError, match="pooling must be one of"):
        await run(SMALL, {"text": "a", "pooling": ["mean"]})
    with pytest.raises(AiError, match="inputs must be a dict, got list"):
        await run(SMALL, ["a"])  # type: ignore[arg-type]
    with pytest.raises(AiError, match=r"options \(gateway\) are Cloudflare's AI Gateway's"):
        await run(SMALL, {"text": "a"}, {"gateway": {"id": "g"}})
    assert (await run(SMALL, {"text": "a"}, {}))["shape"] == [1, 32]
    with pytest.raises(AiError, match="the model must be a name"):
        await run(None, {"text": "a"})  # type: ignore[arg-type]
    unknown = rf"unknown model '@cf/baai/bge-m3'; this app's \[ai\] serves: {SMALL}"
    with pytest.raises(AiError, match=unknown):
        await run("@cf/baai/bge-m3", {"text": "a"})
    # A Workers AI model whose folder is not there yet: the error says where to put it.
    with pytest.raises(
        AiError, match=r"has no folder: put its ONNX export .* in .*/models/bge-base"
    ):
        await run("@cf/baai/bge-base-en-v1.5", {"text": "a"})
    with pytest.raises(AiError, match="over 1048576 bytes"):
        await run(SMALL, {"text": "a" * ((1 << 20) + 1)})
    # Odd but valid text: empty, unknown words, control characters, emoji.
    odd = await run(SMALL, {"text": ["", "zzz qqq", "\x00\x07 tab\tnew\nline", "🤗 hugging"]})
    assert odd["shape"] == [4, 32]
    assert np.all(np.isfinite(np.array(odd["data"])))


async def test_over_http_a_handler_returns_the_answer(app: TestApp) -> None:
    async with httpx.AsyncClient(base_url=app.url) as client:
        reply = await client.post("/embed", json={"model": SMALL, "inputs": {"text": "hello"}})
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    assert body["shape"] == [1, 32] and len(body["data"][0]) == 32


def test_a_broken_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AiError, match="does not exist"):
        EmbeddingModel(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AiError, match=r"holds no model\.onnx"):
        EmbeddingModel(tmp_path / "empty")
    folder = build_model(tmp_path / "m")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(AiError, match=r"holds no tokenizer\.json"):
        EmbeddingModel(folder)
    folder = build_model(tmp_path / "garbage")
    (folder / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(AiError, match="cannot load it"):
        EmbeddingModel(folder)
    # A hub export's layout: the graph under onnx/.
    hub = build_model(tmp_path / "hub")
    (hub / "onnx").mkdir()
    (hub / "model.onnx").rename(hub / "onnx" / "model.onnx")
    assert EmbeddingModel(hub).dimensions == 32


def test_config_checks_the_ai_table(tmp_path: Path) -> None:
    def config(body: str) -> Path:
        (tmp_path / "raydo.toml").write_text(f'name = "x"\nmain = "app:app"\n{body}')
        return tmp_path

    with pytest.raises(ConfigError, match=r"ai\.models_dir: .* is not a folder"):
        load_config(config('[ai]\nbinding = "AI"\nmodels_dir = "missing"\n'))
    with pytest.raises(ConfigError, match=r"ai\.binding: missing required key"):
        load_config(config("[ai]\n"))
    with pytest.raises(ConfigError, match=r"ai\.models\.m: expected a model folder"):
        load_config(config('[ai]\nbinding = "AI"\n[ai.models]\nm = 3\n'))
    with pytest.raises(ConfigError, match=r"ai\.pooling"):
        load_config(config('[ai]\nbinding = "AI"\npooling = "mean"\n'))
    (tmp_path / "models").mkdir()
    loaded = load_config(config('[ai]\nbinding = "AI"\nmodels_dir = "models"\n'))
    assert loaded.ai is not None and loaded.ai["models_dir"] == str(tmp_path / "models")
    # A model's own pool: only for embedding models served here, with [ai]'s pool keys.
    pool = '[ai]\nbinding = "AI"\n[ai.models]\nmine = "m"\n[ai.pools.{name}]\n{body}\n'
    with pytest.raises(ConfigError, match=r"ai\.pools\.other: not an embedding model .*mine"):
        load_config(config(pool.format(name="other", body="replicas = 2")))
    with pytest.raises(ConfigError, match=r"ai\.pools\.mine\.replicas"):
        load_config(config(pool.format(name="mine", body="replicas = 0")))
    with pytest.raises(ConfigError, match=r"ai\.pools\.mine\.binding"):
        load_config(config(pool.format(name="mine", body='binding = "X"')))
    with pytest.raises(ConfigError, match=r"ai\.pools\.mine"):
        load_config(config('[ai]\nbinding = "AI"\n[ai.models]\nmine = "m"\n[ai.pools]\nmine = 3\n'))
    loaded = load_config(config(pool.format(name="mine", body="replicas = 3\nnum_gpus = 1")))
    assert loaded.ai is not None
    assert loaded.ai["pools"] == {"mine": {"replicas": 3, "num_gpus": 1}}
    loaded = load_config(config(pool.format(name='"@cf/baai/bge-large-en-v1.5"', body="")))
    assert loaded.ai is not None and loaded.ai["pools"] == {"@cf/baai/bge-large-en-v1.5": {}}


def test_a_model_from_the_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The layout huggingface-cli download leaves: refs/main names the snapshot's commit.
    repo = tmp_path / "hub" / "models--BAAI--bge-small-en-v1.5"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = build_model(repo / "snapshots" / commit)
    (snapshot / "onnx").mkdir()
    (snapshot / "model.onnx").rename(snapshot / "onnx" / "model.onnx")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert EmbeddingModel("hf:BAAI/bge-small-en-v1.5").folder == snapshot
    assert EmbeddingModel(f"hf:BAAI/bge-small-en-v1.5@{commit}").folder == snapshot
    with pytest.raises(AiError, match=r"not in the hub cache .*\(huggingface-cli download BAAI/x"):
        EmbeddingModel("hf:BAAI/x")
    with pytest.raises(AiError, match="expected hf:org/name"):
        EmbeddingModel("hf:../../etc")
    # Through the config: the reference is kept, and resolved where the model loads.
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "raydo.toml").write_text(
        'name = "x"\nmain = "app:app"\n[ai]\nbinding = "AI"\n'
        '[ai.models]\n"@cf/baai/bge-small-en-v1.5" = "hf:BAAI/bge-small-en-v1.5"\n'
    )
    loaded = load_config(tmp_path / "app")
    assert loaded.ai is not None
    assert loaded.ai["models"] == {SMALL: "hf:BAAI/bge-small-en-v1.5"}
