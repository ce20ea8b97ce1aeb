"""The model binding's replicas, in process and on the session's Ray (a pool of Ray actors):
concurrent callers' texts share forward passes (counted by the replica's stats, not timed),
and a burst past ``max_queue_texts`` is answered ``Overloaded`` at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raydo.actors import Overloaded
from raydo.bindings.ai import Ai, AiOverloaded
from raydo.gateway.testing import TestApp, start_app
from tests.ai_models import build_model
from tests.placements import Placement, local_only

SMALL = "@cf/baai/bge-small-en-v1.5"
BASE = "@cf/baai/bge-base-en-v1.5"


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    folder = app_copy("ai_pool")
    build_model(folder / "models" / "bge-small-en-v1.5", hidden=32)
    build_model(folder / "models" / "bge-base-en-v1.5", hidden=16)
    return folder


@pytest.fixture
async def app(app_dir: Path, placement: Placement) -> AsyncIterator[TestApp]:
    async with start_app(app_dir, **placement) as app:
        yield app


def ai(app: TestApp) -> Ai:
    found: Ai = app.env.AI
    return found


async def test_concurrent_callers_share_forward_passes(app: TestApp) -> None:
    alone = await ai(app).run(SMALL, {"text": "the cat sat"})  # loads the replica
    (before,) = await ai(app).stats(SMALL)
    texts = ["the cat sat", "a dog", "hello world", "the orange cloud", "rain", "sun", "tree"]
    answers = await asyncio.gather(*(ai(app).run(SMALL, {"text": t}) for t in texts))
    (after,) = await ai(app).stats(SMALL)
    assert after["calls"] - before["calls"] == len(texts)
    assert after["texts"] - before["texts"] == len(texts)
    passes = after["forward_passes"] - before["forward_passes"]
    assert 1 <= passes < len(texts) and after["largest_batch"] > 1
    # Batched, each caller still gets its own text's vector.
    assert np.allclose(answers[0]["data"][0], alone["data"][0], atol=1e-5)
    assert all(a["shape"] == [1, 32] for a in answers)


async def test_mean_and_cls_callers_are_answered_in_separate_passes(app: TestApp) -> None:
    calls = [ai(app).run(SMALL, {"text": "hello", "pooling": p}) for p in ("mean", "cls") * 3]
    answers = await asyncio.gather(*calls)
    assert [a["pooling"] for a in answers] == ["mean", "cls"] * 3
    assert answers[0]["data"] == answers[2]["data"] and answers[1]["data"] == answers[3]["data"]
    assert not np.allclose(answers[0]["data"][0], answers[1]["data"][0], atol=1e-3)


async def test_a_burst_past_the_queue_is_overloaded(app: TestApp) -> None:
    await ai(app).run(SMALL, {"text": "warm"})
    results = await asyncio.gather(
        *(ai(app).run(SMALL, {"text": ["a", "b"]}) for _ in range(20)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert refused and answered
    for error in refused:
        assert isinstance(error, AiOverloaded) and isinstance(error, Overloaded)
        assert error.overloaded and "max_queue_texts = 8" in str(error)
    assert all(r["shape"] == [2, 32] for r in answered)
    (stats,) = await ai(app).stats(SMALL)
    assert stats["overloaded"] == len(refused) and stats["queued_texts"] == 0
    # Once the queue drains, calls are taken again.
    assert (await ai(app).run(SMALL, {"text": "again"}))["shape"] == [1, 32]


async def test_a_model_s_own_pool_settings_hold_for_it_alone(
    app: TestApp, placement: Placement
) -> None:
    # [ai.pools."@cf/baai/bge-base-en-v1.5"]: two replicas (on Ray; in process a model has
    # one server) and a queue of two texts; the small model keeps [ai]'s one and eight.
    assert (await ai(app).run(BASE, {"text": ["a", "b"]}))["shape"] == [2, 16]
    with pytest.raises(AiOverloaded, match="max_queue_texts = 2"):
        await ai(app).run(BASE, {"text": ["a", "b", "c"]})
    assert (await ai(app).run(SMALL, {"text": ["a", "b", "c"]}))["shape"] == [3, 32]
    replicas = 2 if placement.get("ray") else 1
    assert len(await ai(app).stats(BASE)) == replicas
    assert len(await ai(app).stats(SMALL)) == 1


@local_only
async def test_closing_the_binding_stops_its_models(app: TestApp) -> None:
    def workers() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "raydo-ai-batcher"]

    await ai(app).run(SMALL, {"text": "hello"})
    assert len(workers()) == 1
    await ai(app).aclose()
    assert workers() == []
    # A later call loads the model again.
    assert (await ai(app).run(SMALL, {"text": "hello"}))["shape"] == [1, 32]
    assert len(workers()) == 1
