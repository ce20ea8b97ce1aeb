"""Embeddings through the model binding (``env.AI.run``) beside the same model called
directly with onnxruntime and tokenizers, in the same run.

Two models, built on the spot with random weights (``tests/ai_models.py``; nothing is
downloaded): the tests' fixture (hidden 32, 2 layers) and one shaped like bge-small-en-v1.5
(hidden 384, 12 layers, 12 heads' worth of width in one head, feed-forward 1536, a 30,522-token
embedding table: the same matrix sizes, so the same arithmetic per token). Texts are 40 words
of the fixture's vocabulary (42 tokens with [CLS] and [SEP]).

Per model:

* **direct**: ``onnxruntime.InferenceSession`` and ``tokenizers.Tokenizer`` called in a loop
  (tokenize, run, mean-pool, normalise), with the thread settings the binding uses;
* **binding**: ``await env.AI.run(model, {"text": ...})`` with the app's runtime in this
  process (the runtime of ``raydo dev --in-process``; no HTTP), calls one after another;
* each with one text a call and with batches of 32: texts per second, and the binding's
  share of direct;
* **concurrent callers**: 32 callers at once, one text each, through the binding: texts per
  second and the forward passes they took (from ``env.AI.stats``), beside the same 32 texts
  one call after another;
* with ``--ray``, the same binding with the model in its pool of Ray actors (one replica,
  an embedded local Ray, as under ``raydo dev``): texts per second at 1 and 32 texts a call,
  and the 32 concurrent callers.

Prints a table and writes ``bench/results/embeddings.json`` (with ``--ray``:
``embeddings_ray.json``).

    .venv/bin/python bench/embeddings.py [--seconds 5] [--ray]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raydo.actors.placement import LocalPlacement
from raydo.gateway.app import Gateway
from raydo.gateway.config import load_config
from tests.ai_models import WORDS, build_model

MODEL = "@cf/baai/bge-small-en-v1.5"
RESULTS = Path(__file__).resolve().parent / "results" / "embeddings.json"
RAY_RESULTS = RESULTS.with_name("embeddings_ray.json")
WORDS_PER_TEXT = 40
CALLERS = 32
SHAPES: dict[str, dict[str, int]] = {
    "fixture": {"hidden": 32, "layers": 2},
    "bge-small-shaped": {"hidden": 384, "layers": 12, "ffn": 1536, "vocab_size": 30522},
}


def texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, WORDS_PER_TEXT)) for _ in range(n)]


async def rate(seconds: float, batch: int, call: Callable[[list[str]], Awaitable[Any]]) -> float:
    """Texts per second over calls of ``batch`` texts, for about ``seconds`` (after a warm-up)."""
    pool = texts(512, seed=batch)
    await call(pool[:batch])
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        start = (done % 480) if batch < 32 else 0
        await call(pool[start : start + batch])
        done += batch
    return done / (time.perf_counter() - started)


class Direct:
    """The model called directly: tokenizers, onnxruntime, numpy."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(512)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def embed(self, batch: list[str]) -> np.ndarray[Any, Any]:
        encodings = self.tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(["last_hidden_state"], feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(1) / weights.sum(1)
        normed: np.ndarray[Any, Any] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return normed


async def concurrent(ai: Any, seconds: float) -> dict[str, Any]:
    """32 callers at once, one text each, against the same texts one call at a time."""
    callers = texts(CALLERS, seed=7)

    async def one(text: str) -> Any:
        return await ai.run(MODEL, {"text": [text]})

    before = await ai.stats(MODEL)
    rounds = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        await asyncio.gather(*(one(t) for t in callers))
        rounds += 1
    together = time.perf_counter() - started
    after = await ai.stats(MODEL)
    apart_rounds = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for t in callers:
            await one(t)
        apart_rounds += 1
    apart = time.perf_counter() - started
    passes = sum(
        a["forward_passes"] - b["forward_passes"] for a, b in zip(after, before, strict=True)
    )
    return {
        "callers": CALLERS,
        "rounds": rounds,
        "texts_per_s": CALLERS * rounds / together,
        "forward_passes": passes,
        "texts_per_forward_pass": CALLERS * rounds / passes,
        "one_after_another_texts_per_s": CALLERS * apart_rounds / apart,
    }


async def on_ray(app: Path, seconds: float) -> dict[str, Any]:
    """The binding with the model in its Ray pool (one replica, an embedded Ray)."""
    from raydo.gateway.testing import start_app

    async with start_app(app, ray=True) as served:
        ai = served.env.AI

        async def call(batch: list[str]) -> Any:
            return await ai.run(MODEL, {"text": batch})

        out: dict[str, Any] = {}
        for batch in (1, 32):
            out[f"batch_{batch}_texts_per_s"] = await rate(seconds, batch, call)
        out["concurrent_callers"] = await concurrent(ai, seconds)
        return out


async def run_model(
    name: str, shape: dict[str, int], seconds: float, root: Path, ray: bool
) -> dict[str, Any]:
    app = root / name
    folder = build_model(app / "models" / "bge-small-en-v1.5", **shape)
    (app / "app.py").write_text(
        "from starlette.applications import Starlette\n\napp = Starlette()\n"
    )
    (app / "raydo.toml").write_text(
        f'name = "bench-{name}"\nmain = "app:app"\n[ai]\nbinding = "AI"\nmodels_dir = "models"\n'
        "num_cpus = 1\n"
    )
    result: dict[str, Any] = {
        "model": name,
        "shape": shape,
        "onnx_bytes": (folder / "model.onnx").stat().st_size,
    }
    direct = Direct(folder)

    async def direct_call(batch: list[str]) -> Any:
        return direct.embed(batch)

    config = load_config(app)
    gateway = Gateway(config, LocalPlacement)
    try:
        gateway.start()
        ai = gateway.env.AI

        async def binding_call(batch: list[str]) -> Any:
            return await ai.run(MODEL, {"text": batch})

        # Same vectors both ways (the binding's are the model's).
        sample = texts(4, seed=99)
        ours = np.array((await binding_call(sample))["data"])
        assert np.allclose(ours, direct.embed(sample), atol=1e-4)
        for batch in (1, 32):
            # Alternated three times, the median of each: the machine is shared.
            ds, bs = [], []
            for _ in range(3):
                ds.append(await rate(seconds / 3, batch, direct_call))
                bs.append(await rate(seconds / 3, batch, binding_call))
            d, b = float(np.median(ds)), float(np.median(bs))
            result[f"batch_{batch}"] = {
                "direct_texts_per_s": d,
                "binding_texts_per_s": b,
                "binding_share": b / d,
                "direct_runs": ds,
                "binding_runs": bs,
            }
        result["concurrent_callers"] = await concurrent(ai, seconds)
    finally:
        await gateway.stop()
    if ray:
        result["ray"] = await on_ray(app, seconds)
    return result


def show(result: dict[str, Any]) -> None:
    print(f"\n{result['model']} ({result['onnx_bytes'] / 1e6:.1f} MB of ONNX)")
    print(f"{'':<16}{'direct t/s':>12}{'binding t/s':>13}{'share':>8}")
    for batch in (1, 32):
        row = result[f"batch_{batch}"]
        print(
            f"{'batch ' + str(batch):<16}{row['direct_texts_per_s']:>12,.0f}"
            f"{row['binding_texts_per_s']:>13,.0f}{row['binding_share']:>8.2f}"
        )
    c = result["concurrent_callers"]
    print(
        f"{c['callers']} callers at once: {c['texts_per_s']:,.0f} texts/s in"
        f" {c['forward_passes']} forward passes ({c['texts_per_forward_pass']:.1f} texts each);"
        f" one after another: {c['one_after_another_texts_per_s']:,.0f} texts/s"
    )
    ray = result.get("ray")
    if ray:
        c = ray["concurrent_callers"]
        print(
            f"on Ray: {ray['batch_1_texts_per_s']:,.0f} texts/s one a call,"
            f" {ray['batch_32_texts_per_s']:,.0f} at 32; {c['callers']} callers at once:"
            f" {c['texts_per_s']:,.0f} texts/s in {c['forward_passes']} forward passes"
            f" ({c['texts_per_forward_pass']:.1f} texts each); one after another:"
            f" {c['one_after_another_texts_per_s']:,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--ray", action="store_true", help="also through the Ray pool")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="raydo-embeddings-") as tmp:
        for name in args.models:
            result = asyncio.run(run_model(name, SHAPES[name], args.seconds, Path(tmp), args.ray))
            show(result)
            results.append(result)
    (RAY_RESULTS if args.ray else RESULTS).write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
                "python": platform.python_version(),
                "load_average": os.getloadavg(),
                "command": f"bench/embeddings.py --seconds {args.seconds:g}"
                + (" --ray" if args.ray else ""),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
