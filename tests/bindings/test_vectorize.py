"""Vector indexes (``[[vectorize]]``) through the binding, in-process hosts unless marked:
Cloudflare's semantics, the metrics' scores, namespaces and metadata filters, every limit and
malformed input (nothing written), the graph's answers beside exact search, durability across
a restart, and the same calls on Ray."""

from __future__ import annotations

import json
import math
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raydo.bindings.vectorize import (
    EXPANSION_SEARCH,
    VECTORIZE_BINDING,
    Vector,
    VectorizeError,
    VectorizeIndex,
    VectorTable,
    shard_name,
    shard_of,
)
from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.runtime import runtime_spec
from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from raydo.storage import LimitExceeded
from tests.hosts import host_actor
from tests.placements import Placement
from tests.polling import poll


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("vectors")


def index(app: TestApp, name: str = "VECTORIZE") -> VectorizeIndex:
    found: VectorizeIndex = getattr(app.env, name)
    return found


def rand(n: int, d: int, seed: int = 0) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-1, 1) for _ in range(d)] for _ in range(n)]


async def test_insert_skips_existing_ids_and_upsert_replaces_whole(app: TestApp) -> None:
    vec = index(app)
    done = await vec.insert(
        [
            {"id": "a", "values": [1, 0, 0, 0], "metadata": {"url": "/a"}},
            Vector("b", [0, 1, 0, 0], namespace="docs"),
        ]
    )
    assert done.count == 2 and len(done.mutation_id) == 32
    again = await vec.insert(
        [{"id": "a", "values": [0, 0, 1, 0]}, {"id": "c", "values": [1, 1, 1, 1]}]
    )
    assert again.count == 1
    (a,) = await vec.get_by_ids(["a"])
    assert a.values == [1, 0, 0, 0] and a.metadata == {"url": "/a"}
    # upsert: values and metadata replaced whole (no metadata given: none kept).
    await vec.upsert([{"id": "a", "values": [0, 0, 1, 0]}])
    (a,) = await vec.get_by_ids(["a"])
    assert a.values == [0, 0, 1, 0] and a.metadata is None and a.namespace is None
    # get_by_ids: the order asked, missing ids left out.
    assert [v.id for v in await vec.get_by_ids(["c", "nope", "b"])] == ["c", "b"]
    info = await vec.describe()
    assert info.vector_count == 3 and info.dimensions == 4 and info.metric == "cosine"
    # Visible at once: the mutation that returned is the one applied.
    gone = await vec.delete_by_ids(["b", "never"])
    assert gone.count == 1
    info = await vec.describe()
    assert info.vector_count == 2 and info.processed_up_to_mutation == gone.mutation_id
    assert info.processed_up_to_datetime is not None
    assert [m.id for m in (await vec.query([0, 1, 0, 0], top_k=5)).matches] == ["c", "a"]


async def test_scores_follow_each_metric(app: TestApp) -> None:
    cosine = index(app)
    await cosine.upsert(
        [{"id": "same", "values": [1, 2, 3, 4]}, {"id": "opp", "values": [-1, -2, -3, -4]}]
    )
    found = await cosine.query([2, 4, 6, 8], top_k=2)
    assert [m.id for m in found.matches] == ["same", "opp"] and found.count == 2
    assert found.matches[0].score == pytest.approx(1.0) and found.matches[1].score == pytest.approx(
        -1.0
    )

    # Euclidean over three shards: the L2 distance, lowest first, merged across shards.
    euclid = index(app, "EUCLID")
    await euclid.upsert([{"id": f"p{i}", "values": [i, 0, 0]} for i in range(20)])
    near = await euclid.query([4.25, 0, 0], top_k=3)
    assert [m.id for m in near.matches] == ["p4", "p5", "p3"]
    assert [m.score for m in near.matches] == pytest.approx([0.25, 0.75, 1.25])

    # Dot-product: the negated dot product, lowest first.
    dot = index(app, "DOT")
    await dot.upsert(
        [
            {"id": "big", "values": [10, 0]},
            {"id": "small", "values": [1, 0]},
            {"id": "neg", "values": [-5, 0]},
        ]
    )
    found = await dot.query([1, 0], top_k=3)
    assert [(m.id, m.score) for m in found.matches] == [
        ("big", -10.0),
        ("small", -1.0),
        ("neg", 5.0),
    ]


async def test_namespaces_narrow_and_fields_come_only_when_asked(app: TestApp) -> None:
    vec = index(app)
    await vec.upsert(
        [
            {"id": "x1", "values": [1, 0, 0, 0], "namespace": "x", "metadata": {"n": 1}},
            {"id": "y1", "values": [1, 0.01, 0, 0], "namespace": "y", "metadata": {"n": 2}},
            {"id": "none", "values": [1, 0.02, 0, 0]},
        ]
    )
    plain = (await vec.query([1, 0, 0, 0], top_k=3)).matches
    assert [m.id for m in plain] == ["x1", "y1", "none"]
    assert all(m.values is None and m.metadata is None and m.namespace is None for m in plain)
    only_y = await vec.query([1, 0, 0, 0], top_k=3, namespace="y", return_metadata="all")
    assert [(m.id, m.namespace, m.metadata) for m in only_y.matches] == [("y1", "y", {"n": 2})]
    assert (await vec.query([1, 0, 0, 0], namespace="zzz")).matches == []
    with_values = await vec.query([1, 0, 0, 0], top_k=1, return_values=True)
    assert with_values.matches[0].values == [1.0, 0.0, 0.0, 0.0]
    assert with_values.matches[0].namespace == "x"
    by_id = await vec.query_by_id("none", top_k=1)
    assert by_id.matches[0].id == "none" and by_id.matches[0].score == pytest.approx(1.0)
    with pytest.raises(VectorizeError, match="no vector with id"):
        await vec.query_by_id("missing")


async def test_metadata_filters(app: TestApp) -> None:
    vec = index(app)
    await vec.upsert([{"id": "early", "values": [1, 0, 0, 0], "metadata": {"genre": "drama"}}])
    await vec.create_metadata_index("genre", "string")
    await vec.create_metadata_index("year", "number")
    await vec.create_metadata_index("info.ok", "boolean")
    assert {(m.property_name, m.index_type) for m in await vec.list_metadata_indexes()} == {
        ("genre", "string"),
        ("year", "number"),
        ("info.ok", "boolean"),
    }
    rows = [
        ("d1", "drama", 1999, True),
        ("d2", "drama", 2005, False),
        ("c1", "comedy", 2010, True),
        ("c2", "comedy", "2012", True),  # a string in a number index: not indexed
    ]
    await vec.upsert(
        [
            {
                "id": id_,
                "values": [1, i * 0.1, 0, 0],
                "metadata": {"genre": genre, "year": year, "info": {"ok": ok}},
            }
            for i, (id_, genre, year, ok) in enumerate(rows)
        ]
    )

    async def ids(filter: dict[str, Any]) -> set[str]:
        found = await vec.query([1, 0, 0, 0], top_k=10, filter=filter)
        return {m.id for m in found.matches}

    # "early" was written before the index existed: it is in no index until rewritten.
    assert await ids({"genre": "drama"}) == {"d1", "d2"}
    assert await ids({"genre": {"$eq": "drama"}}) == {"d1", "d2"}
    assert await ids({"genre": {"$ne": "drama"}}) == {"early", "c1", "c2"}
    assert await ids({"genre": {"$in": ["comedy", "horror"]}}) == {"c1", "c2"}
    assert await ids({"genre": {"$nin": ["comedy"]}}) == {"early", "d1", "d2"}
    assert await ids({"year": {"$gte": 2005}}) == {"d2", "c1"}
    assert await ids({"year": {"$gt": 2005, "$lte": 2010}}) == {"c1"}
    assert await ids({"year": {"$lt": 2005}}) == {"d1"}
    assert await ids({"genre": "drama", "year": {"$gt": 2000}}) == {"d2"}  # implicit AND
    assert await ids({"info.ok": True}) == {"d1", "c1", "c2"}  # dotted keys reach nesting
    assert await ids({"info.ok": 1}) == set()  # types never mix
    assert await ids({"year": None}) == {"early", "c2"}
    assert await ids({"year": {"$ne": None}}) == {"d1", "d2", "c1"}
    assert await ids({"genre": {"$gte": "d"}}) == {"d1", "d2"}  # strings order too
    # The filter is applied before top_k: the one match is found however far it is.
    found = await vec.query([0, 0, 0, 1], top_k=1, filter={"year": {"$lt": 2000}})
    assert [m.id for m in found.matches] == ["d1"]
    # Rewriting puts an old vector into the indexes.
    await vec.upsert([{"id": "early", "values": [1, 0, 0, 0], "metadata": {"genre": "drama"}}])
    assert await ids({"genre": "drama"}) == {"early", "d1", "d2"}
    indexed = await vec.query(
        [1, 0, 0, 0], top_k=1, return_metadata="indexed", filter={"genre": "drama"}
    )
    assert indexed.matches[0].metadata == {"genre": "drama"}

    with pytest.raises(VectorizeError, match="no metadata index"):
        await vec.query([1, 0, 0, 0], filter={"colour": "red"})
    await vec.delete_metadata_index("genre")
    with pytest.raises(VectorizeError, match="no metadata index"):
        await vec.query([1, 0, 0, 0], filter={"genre": "drama"})
    with pytest.raises(VectorizeError, match="already has a metadata index"):
        await vec.create_metadata_index("year", "number")
    with pytest.raises(VectorizeError, match="index type"):
        await vec.create_metadata_index("x", "date")


async def test_strings_are_indexed_on_their_first_64_bytes(app: TestApp) -> None:
    vec = index(app)
    await vec.create_metadata_index("title", "string")
    stem = "é" * 32  # 64 bytes of UTF-8
    await vec.upsert(
        [
            {"id": "one", "values": [1, 0, 0, 0], "metadata": {"title": stem + "one"}},
            {"id": "two", "values": [1, 0, 0, 0], "metadata": {"title": stem + "two"}},
        ]
    )
    found = await vec.query([1, 0, 0, 0], filter={"title": stem + "anything"})
    assert {m.id for m in found.matches} == {"one", "two"}


@pytest.mark.parametrize(
    "bad, message",
    [
        ([1, 2, 3], "has 3 dimensions; the index has 4"),
        ([1, 2, 3, float("nan")], "NaN or infinite"),
        ([1, 2, 3, math.inf], "NaN or infinite"),
        ([1, 2, 3, "4"], "must be numbers"),
        ([1, 2, 3, True], "must be numbers"),
        ("1234", "list of numbers"),
        ([1, 2, 3, 1e39], "too large for float32"),
    ],
)
async def test_malformed_values_are_refused_before_anything_is_written(
    app: TestApp, bad: Any, message: str
) -> None:
    vec = index(app)
    with pytest.raises(VectorizeError, match=message):
        await vec.upsert([{"id": "ok", "values": [1, 0, 0, 0]}, {"id": "bad", "values": bad}])
    with pytest.raises(VectorizeError, match=message):
        await vec.query(bad)
    assert (await vec.describe()).vector_count == 0


async def test_malformed_calls_are_refused(app: TestApp) -> None:
    vec = index(app)
    ok = [1.0, 0, 0, 0]
    cases: list[tuple[Any, str]] = [
        ([{"id": "", "values": ok}], "is empty"),
        ([{"id": 7, "values": ok}], "must be a str"),
        ([{"id": "a", "values": ok}, {"id": "a", "values": ok}], "more than once"),
        ([{"values": ok}], "needs 'id' and 'values'"),
        ([{"id": "a", "values": ok, "vector": ok}], "unknown keys"),
        ([{"id": "a", "values": ok, "metadata": "text"}], "metadata must be a dict"),
        ([{"id": "a", "values": ok, "metadata": {"x": float("nan")}}], "must be JSON"),
        ([{"id": "a", "values": ok, "namespace": ""}], "namespace"),
        ([], "at least one vector"),
        ({"id": "a", "values": ok}, "list of vectors"),
        (["a"], "not a dict or Vector"),
    ]
    for vectors, message in cases:
        with pytest.raises(VectorizeError, match=message):
            await vec.insert(vectors)
    assert (await vec.describe()).vector_count == 0
    await vec.create_metadata_index("n", "number")
    filters: list[tuple[Any, str]] = [
        ("genre", "must be a dict"),
        ({"$and": []}, "operators go inside"),
        ({"n": {"$regex": "x"}}, "unknown operator"),
        ({"n": {"$in": []}}, "non-empty list"),
        ({"n": {"$in": "abc"}}, "non-empty list"),
        ({"n": {"$lt": None}}, "expected a string"),
        ({"n": {"$eq": [1]}}, "expected a string"),
        ({"n": {}}, "empty operator"),
        ({"": 1}, "non-empty"),
        ({"a..b": 1}, "no empty part"),
        ({"n": float("inf")}, "JSON"),
    ]
    for filter, message in filters:
        with pytest.raises(VectorizeError, match=message):
            await vec.query(ok, filter=filter)
    with pytest.raises(VectorizeError, match="top_k"):
        await vec.query(ok, top_k=0)
    with pytest.raises(VectorizeError, match="return_metadata"):
        await vec.query(ok, return_metadata="some")
    with pytest.raises(VectorizeError, match="list of ids"):
        await vec.get_by_ids("abc")


async def test_every_limit_names_itself_and_writes_nothing(app: TestApp) -> None:
    small = index(app, "SMALL")
    await small.create_metadata_index("a", "string")
    await small.create_metadata_index("b", "string")
    ok = [0.5] * 8

    async def refused(limit: str, call: Any) -> None:
        with pytest.raises(LimitExceeded) as caught:
            await call
        assert caught.value.limit == limit and limit in str(caught.value)

    await refused("max_id_bytes", small.upsert([{"id": "ninebytes", "values": ok}]))
    await refused(
        "max_metadata_bytes",
        small.upsert([{"id": "a", "values": ok, "metadata": {"t": "x" * 80}}]),
    )
    await refused(
        "max_namespace_bytes", small.upsert([{"id": "a", "values": ok, "namespace": "n" * 9}])
    )
    await refused("max_batch", small.upsert([{"id": str(i), "values": ok} for i in range(21)]))
    await refused("max_batch", small.get_by_ids([str(i) for i in range(21)]))
    await refused("max_top_k", small.query(ok, top_k=11))
    await refused("max_top_k_with_values", small.query(ok, top_k=6, return_values=True))
    await refused("max_top_k_with_values", small.query(ok, top_k=6, return_metadata="all"))
    await refused("max_filter_bytes", small.query(ok, filter={"a": "x" * 100}))
    await refused("max_metadata_indexes", small.create_metadata_index("c", "string"))
    assert (await small.describe()).vector_count == 0
    # max_vectors (300): fill to it, then one more is refused whole.
    for start in range(0, 300, 20):
        await small.upsert(
            [{"id": str(i), "values": rand(1, 8, i)[0]} for i in range(start, start + 20)]
        )
    await refused("max_vectors", small.insert([{"id": "new", "values": ok}]))
    # Rewriting what exists adds nothing and passes.
    assert (await small.upsert([{"id": "1", "values": ok}])).count == 1
    assert (await small.describe()).vector_count == 300
    # 10 results at most with top_k=10, fine.
    assert (await small.query(ok, top_k=10)).count == 10


def test_a_graph_built_apart_takes_the_writes_made_meanwhile() -> None:
    rng = np.random.default_rng(11)
    data = rng.standard_normal((300, 8)).astype(np.float32)
    table = VectorTable(8, "cosine", exact_below=50)
    table.put_many([f"v{i}" for i in range(200)], data[:200], [""] * 200)
    work = table.start_build()
    assert work is not None and table.building and not table.has_graph
    assert table.start_build() is None  # one build at a time
    # While it is built: rows past the arrays it reads (they grow), an update in place,
    # deletes, and a deleted row taken again by a new id.
    table.put_many([f"v{i}" for i in range(200, 300)], data[200:], [""] * 100)
    table.put("v3", data[250], "")
    for i in (5, 6, 7):
        table.remove(f"v{i}")
    table.put("new", data[10], "")
    scanned = [table.search(q, 10, None) for q in data[::30]]  # exact meanwhile
    table.finish_build(work())
    assert table.has_graph and not table.building and table.graph_source == "built"
    state = table.graph_state()
    assert state is not None
    graph, ids = state
    assert sorted(int(k) for k in graph.keys) == sorted(table.row_of.values())
    assert all(ids[row] == id_ for id_, row in table.row_of.items())
    # Through the graph now (approximate: nearly the same answers, each score exact), the
    # update and the new id included.
    for q, exact in zip(data[::30], scanned, strict=True):
        found = table.search(q, 10, None)
        assert len({r for r, _ in found} & {r for r, _ in exact}) >= 8, (found, exact)
        scores = dict(exact)
        assert all(score == scores[r] for r, score in found if r in scores)
    assert {"v3", "v250"} <= {table.ids[r] for r, _ in table.search(data[250], 10, None)}
    assert {"new", "v10"} <= {table.ids[r] for r, _ in table.search(data[10], 10, None)}
    assert "v5" not in {table.ids[r] for r, _ in table.search(data[5], 10, None)}


async def test_a_build_that_takes_longer_goes_on_after_the_event(app_dir: Path) -> None:
    config = app_dir / "raydo.toml"
    config.write_text(
        config.read_text()
        + '\n[[vectorize]]\nbinding = "LAZY"\nindex_name = "lazy"\ndimensions = 8\n'
        "exact_below = 50\ngraph_build_wait_seconds = 0\n"
    )
    data = rand(200, 8, seed=12)
    async with start_app(app_dir) as app:
        lazy = index(app, "LAZY")
        # The write that crosses exact_below starts the build and returns without it.
        await lazy.upsert([{"id": f"l{i}", "values": data[i]} for i in range(200)])
        found = await lazy.query(data[42], top_k=1)  # exact, or through the graph once built
        assert found.matches[0].id == "l42"

        async def status() -> dict[str, Any]:
            [shard] = await lazy.shard_status()
            return shard

        built = await poll(status, lambda s: s["graph"] and not s["graph_building"])
        assert built["graph_source"] == "built"
        # The next event saves the graph the build left.
        await lazy.query(data[7], top_k=1)
        assert (await status())["graph_saves"] >= 1


async def test_the_graph_finds_what_exact_search_finds(app: TestApp) -> None:
    small = index(app, "SMALL")  # a graph from 50 vectors on, per shard
    data = np.asarray(rand(200, 8, seed=3), dtype=np.float32)
    for start in range(0, 200, 20):
        await small.upsert(
            [{"id": f"v{i}", "values": data[i].tolist()} for i in range(start, start + 20)]
        )
    assert all(s["graph"] for s in await small.shard_status())
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    hits = 0
    for q in rand(20, 8, seed=4):
        qv = np.asarray(q, dtype=np.float32)
        exact = np.argsort(-(normed @ (qv / np.linalg.norm(qv))))[:10]
        found = await small.query(q, top_k=10)
        hits += len({f"v{i}" for i in exact} & {m.id for m in found.matches})
        scores = [m.score for m in found.matches]
        assert scores == sorted(scores, reverse=True)
    assert hits / 200 >= 0.95
    # Deleted vectors leave the graph too.
    await small.delete_by_ids([f"v{i}" for i in range(20)])
    found = await small.query(data[0].tolist(), top_k=10)
    assert "v0" not in {m.id for m in found.matches} and found.count == 10


def test_the_table_alone_reuses_rows_and_answers_exactly() -> None:
    table = VectorTable(2, "euclidean", exact_below=10**9)
    table.put("a", np.asarray([0, 0], dtype=np.float32), "")
    table.put("b", np.asarray([3, 4], dtype=np.float32), "")
    assert table.remove("a") == 0 and table.remove("a") is None
    assert table.put("c", np.asarray([1, 0], dtype=np.float32), "ns") == 0
    found = table.search(np.asarray([0, 0], dtype=np.float32), 5, None)
    assert found == [(0, 1.0), (1, 5.0)]
    assert table.search(np.asarray([0, 0], dtype=np.float32), 5, table.namespace_mask("ns")) == [
        (0, 1.0)
    ]


def _reference_top(
    metric: str, stored: dict[str, tuple[np.ndarray[Any, Any], str]], q: Any, ns: str, k: int
) -> list[tuple[str, float]]:
    """The ``k`` closest of the namespace's vectors, in float64 from their values alone."""
    q64 = np.asarray(q, dtype=np.float64)
    scored = []
    for id_, (values, where) in stored.items():
        if where != ns:
            continue
        v = values.astype(np.float64)
        if metric == "cosine":
            score = float(v @ q64 / (np.linalg.norm(v) * np.linalg.norm(q64)))
        elif metric == "euclidean":
            score = float(np.linalg.norm(v - q64))
        else:
            score = -float(v @ q64)
        scored.append((id_, score))
    scored.sort(key=lambda pair: -pair[1] if metric == "cosine" else pair[1])
    return scored[:k]


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dot-product"])
def test_namespaced_scans_through_blocks_answer_exactly_through_writes(metric: str) -> None:
    # Namespaces big enough for a block each (see _blocks), queried between every kind of
    # write to them: each answer matches a float64 reference over the values put so far.
    rng = np.random.default_rng(11)
    table = VectorTable(8, metric, exact_below=10**9)
    stored: dict[str, tuple[np.ndarray[Any, Any], str]] = {}

    def put(id_: str, ns: str) -> None:
        values = rng.standard_normal(8).astype(np.float32)
        table.put(id_, values, ns)
        stored[id_] = (values, ns)

    for i in range(5000):  # four namespaces, two of whose blocks fit the budget
        put(f"v{i}", f"ns{i % 4}")

    def check(ns: str) -> None:
        q = rng.standard_normal(8).astype(np.float32)
        found = table.search(q, 10, table.namespace_mask(ns), ns)
        got = [(table.ids[row], score) for row, score in found]
        want = _reference_top(metric, stored, q, ns, 10)
        assert [id_ for id_, _ in got] == [id_ for id_, _ in want]
        assert [score for _, score in got] == pytest.approx([score for _, score in want])

    check("ns0")
    assert len(table.blocks) == 1  # kept for the next query of ns0
    check("ns0")
    put("v0", "ns0")  # new values for a vector of the namespace
    assert len(table.blocks) == 0
    check("ns0")
    check("ns1")
    put("v1", "ns0")  # a vector moves from ns1 to ns0: both blocks go
    assert len(table.blocks) == 0
    check("ns0")
    check("ns1")
    table.remove("v4")
    del stored["v4"]
    check("ns0")
    put("fresh", "ns0")  # a new row
    check("ns0")
    put("other", "ns9")  # another namespace's write keeps this one's block
    assert len(table.blocks) == 2
    check("ns0")
    # A filter within the namespace: the block is scored, then narrowed to the mask.
    q = rng.standard_normal(8).astype(np.float32)
    mask = table.namespace_mask("ns0")
    mask[np.arange(len(mask)) % 3 != 0] = False
    found = table.search(q, 10, mask, "ns0")
    kept = {table.ids[row] for row in np.flatnonzero(mask)}
    want = _reference_top(metric, {i: stored[i] for i in kept if i is not None}, q, "ns0", 10)
    assert [table.ids[row] for row, _ in found] == [id_ for id_, _ in want]
    # The blocks count in the table's memory, and stay within their share of it.
    assert table.memory_bytes() >= table.matrix.nbytes + table.blocks.nbytes > table.matrix.nbytes


def test_a_filters_block_is_used_only_while_no_write_came_and_it_holds_the_masks_rows() -> None:
    rng = np.random.default_rng(12)
    table = VectorTable(8, "cosine", exact_below=10**9)
    data = rng.standard_normal((4000, 8)).astype(np.float32)
    table.put_many([f"v{i}" for i in range(4000)], data, [""] * 4000)

    def top(mask: np.ndarray[Any, Any], q: np.ndarray[Any, Any]) -> list[int]:
        rows = np.flatnonzero(mask)
        scores = data[rows] @ q / (np.linalg.norm(data[rows], axis=1) * np.linalg.norm(q))
        return [int(r) for r in rows[np.argsort(-scores)[:10]]]

    evens = np.arange(4000) % 2 == 0
    q = rng.standard_normal(8).astype(np.float32)
    assert [row for row, _ in table.search(q, 10, evens, selection="k")] == top(evens, q)
    block = table.blocks.get(("selection", "k"))
    assert block is not None
    assert [row for row, _ in table.search(q, 10, evens, selection="k")] == top(evens, q)
    assert table.blocks.get(("selection", "k")) is block  # the same rows, no write: reused
    # The same key selecting other rows (a metadata index made since, say): not that block.
    thirds = np.arange(4000) % 3 == 0
    assert [row for row, _ in table.search(q, 10, thirds, selection="k")] == top(thirds, q)
    assert table.blocks.get(("selection", "k")) is not block
    # A write anywhere (new values for a row the filter selects): a fresh block.
    block = table.blocks.get(("selection", "k"))
    data[3] = q * 100
    table.put("v3", data[3], "")
    found = table.search(q, 10, thirds, selection="k")
    assert [row for row, _ in found] == top(thirds, q) and found[0][0] == 3
    assert table.blocks.get(("selection", "k")) is not block


def test_blocks_stay_within_their_budget_least_recently_used_leaving_first() -> None:
    table = VectorTable(4, "euclidean", exact_below=10**9)
    rows_each = 1100  # past BLOCK_MIN_ROWS
    for i in range(rows_each * 4):
        table.put(f"v{i}", np.full(4, i, dtype=np.float32), f"ns{i % 4}")
    q = np.zeros(4, dtype=np.float32)
    for ns in ("ns0", "ns1", "ns0", "ns2"):  # ns1 is the least recently used when ns2 comes
        assert table.search(q, 3, table.namespace_mask(ns), ns)
    # Half the table's bytes hold two of the four namespaces' blocks.
    assert len(table.blocks) == 2
    assert table.blocks.get(table._codes["ns1"]) is None
    assert table.blocks.get(table._codes["ns0"]) is not None
    # A namespace too small for a block is gathered each time.
    for i in range(10):
        table.put(f"s{i}", np.full(4, i, dtype=np.float32), "small")
    assert [row for row, _ in table.search(q, 3, table.namespace_mask("small"), "small")] == [
        table.row_of[f"s{i}"] for i in range(3)
    ]
    assert table.blocks.get(table._codes["small"]) is None


@pytest.mark.parametrize(("metric", "kind"), [("cosine", "i8"), ("euclidean", "f32")])
def test_the_graph_holds_bytes_for_cosine_whatever_the_lengths(metric: str, kind: str) -> None:
    # Lengths over seven orders of magnitude: bytes of the raw values would clip the long
    # vectors and zero the short ones; the graph holds unit vectors, so neither happens.
    rng = np.random.default_rng(5)
    data = rng.standard_normal((600, 16)).astype(np.float32)
    data *= (10.0 ** rng.uniform(-3, 4, size=600)).astype(np.float32)[:, None]
    table = VectorTable(16, metric, exact_below=100)
    table.put_many([f"v{i}" for i in range(500)], data[:500], [""] * 500)
    table.ensure_graph()
    for i in range(500, 600):  # one at a time after the graph exists
        table.put(f"v{i}", data[i], "")
    table.put("zero", np.zeros(16, dtype=np.float32), "")  # no length to divide by
    assert table.graph_kind == kind
    hits = 0
    # Queries near stored vectors: far from them every tiny vector is about equally near in
    # euclidean distance, and recall among ties would measure nothing.
    near = data[rng.choice(600, 20, replace=False)]
    for q in near + 0.3 * np.abs(near) * rng.standard_normal(near.shape).astype(np.float32):
        if metric == "cosine":
            exact = data @ q / (np.linalg.norm(data, axis=1) * np.linalg.norm(q))
            best = np.argsort(-exact)[:10]
        else:
            exact = np.linalg.norm(data - q, axis=1)
            best = np.argsort(exact)[:10]
        found = table.search(q, 10, None)
        hits += len({int(b) for b in best} & {row for row, _ in found})
        for row, score in found:  # the exact scores, not the graph's
            if row < 600:
                assert score == pytest.approx(float(exact[row]), rel=1e-5)
    if metric == "cosine":  # in euclidean distance these lengths make a graph's worst case
        assert hits / 200 >= 0.95
        # A query of no length scores 0 against every vector, and quietly (no warnings).
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            found = table.search(np.zeros(16, dtype=np.float32), 5, None)
        assert len(found) == 5 and {score for _, score in found} == {0.0}


async def test_an_index_survives_a_restart(app_dir: Path) -> None:
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        vec = index(app)
        await vec.create_metadata_index("k", "string")
        done = await vec.upsert(
            [
                {"id": f"v{i}", "values": [1, i, 0, 0], "metadata": {"k": str(i % 2)}}
                for i in range(10)
            ]
        )
        await vec.delete_by_ids(["v0"])
        small = index(app, "SMALL")
        await small.upsert([{"id": f"s{i}", "values": rand(1, 8, i)[0]} for i in range(20)])
        for start in range(20, 120, 20):
            await small.upsert(
                [{"id": f"s{i}", "values": rand(1, 8, i)[0]} for i in range(start, start + 20)]
            )
        before = await small.query([0.1] * 8, top_k=10)
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        vec = index(app)
        info = await vec.describe()
        assert info.vector_count == 9 and info.processed_up_to_mutation != done.mutation_id
        found = await vec.query([1, 3, 0, 0], top_k=3, filter={"k": "1"}, return_metadata="all")
        assert [m.id for m in found.matches] == ["v3", "v5", "v7"]
        small = index(app, "SMALL")
        assert await small.query([0.1] * 8, top_k=10) == before
        assert all(s["graph"] for s in await small.shard_status())


async def test_a_restart_loads_the_saved_graph_unless_the_data_moved_on(
    app_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = rand(160, 8, seed=5)
    queries = rand(5, 8, seed=6)

    async def sources(small: VectorizeIndex) -> list[str | None]:
        return [s["graph_source"] for s in await small.shard_status()]

    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        small = index(app, "SMALL")  # two shards, a graph from 50 vectors on
        for start in range(0, 160, 20):
            await small.upsert(
                [{"id": f"g{i}", "values": data[i]} for i in range(start, start + 20)]
            )
        # Last, a delete of a tenth of each shard or more (rows the saved layout keeps free).
        await small.delete_by_ids([f"g{i}" for i in range(100, 120)])
        shards = await small.shard_status()
        assert all(s["graph_source"] == "built" and s["graph_saves"] >= 1 for s in shards)
        assert [s["graph_search_breadth"] for s in shards] == [EXPANSION_SEARCH] * 2
        before = [await small.query(q, top_k=10) for q in queries]
    # Each shard's last writes were a tenth of it or more: its graph was saved after them.
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        small = index(app, "SMALL")
        assert await sources(small) == ["saved", "saved"]
        # usearch restores a graph at its own default breadth (64): the shard sets ours again.
        shards = await small.shard_status()
        assert [s["graph_search_breadth"] for s in shards] == [EXPANSION_SEARCH] * 2
        assert [await small.query(q, top_k=10) for q in queries] == before
        # Under a tenth of a shard: not saved, but journaled; so is a delete.
        await small.upsert([{"id": "late", "values": data[0]}, {"id": "g1", "values": data[2]}])
        await small.delete_by_ids(["g5"])
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        small = index(app, "SMALL")
        shards = await small.shard_status()
        # The saved graphs, caught up with the ids written or deleted since they were saved.
        assert [s["graph_source"] for s in shards] == ["saved", "saved"]
        assert sum(s["graph_caught_up"] for s in shards) == 4  # late, g1 twice (out, in), g5
        found = await small.query(data[0], top_k=2)
        assert {m.id for m in found.matches} == {"late", "g0"}
        found = await small.query(data[2], top_k=3)
        assert {"g1", "g2"} <= {m.id for m in found.matches}
        assert "g5" not in {m.id for m in (await small.query(data[5], top_k=10)).matches}
        await small.upsert([{"id": f"h{i}", "values": data[i]} for i in range(20)])
        after = [await small.query(q, top_k=10) for q in queries]
    # A damaged graph file (cut short, or the same size of noise) is built again, and said.
    graphs = sorted(app_dir.rglob(".*.graph-*"))
    assert len(graphs) == 2
    graphs[0].write_bytes(graphs[0].read_bytes()[:100])
    graphs[1].write_bytes(np.random.default_rng(7).bytes(graphs[1].stat().st_size))
    caplog.set_level("WARNING", logger="raydo.vectorize")
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        small = index(app, "SMALL")
        assert await sources(small) == [None, None]
        again = [await small.query(q, top_k=10) for q in queries]
        assert await sources(small) == ["built", "built"]
        # A graph built anew is another approximation: it finds nearly the same vectors.
        for old, new in zip(after, again, strict=True):
            assert len({m.id for m in old.matches} & {m.id for m in new.matches}) >= 8
    assert caplog.text.count("is not usable") == 2
    # A float32 graph saved before cosine graphs held bytes (its header says no kind) is not
    # loaded: built again once, as bytes.
    headers = sorted(app_dir.rglob(".*.graph.json"))
    assert len(headers) == 2
    for header in headers:
        saved = json.loads(header.read_text())
        assert saved["shape"] == "8/cosine/i8"
        header.write_text(json.dumps({**saved, "shape": "8/cosine"}))
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        small = index(app, "SMALL")
        assert (await small.query(queries[0], top_k=10)).count == 10
        shards = await small.shard_status()
        assert [(s["graph_source"], s["graph_kind"]) for s in shards] == [("built", "i8")] * 2


async def test_a_changed_shape_is_refused(app_dir: Path) -> None:
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        await index(app).upsert([{"id": "a", "values": [1, 0, 0, 0]}])
    config = app_dir / "raydo.toml"
    config.write_text(config.read_text().replace("dimensions = 4", "dimensions = 5", 1))
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        with pytest.raises(VectorizeError, match="holds vectors of 4 dimensions"):
            await index(app).upsert([{"id": "a", "values": [1, 0, 0, 0, 0]}])


async def test_a_changed_shape_writes_nothing_to_any_shard(app_dir: Path) -> None:
    # Vectors in one shard of three; the other two are empty and hold no shape yet.
    ids = [f"p{i}" for i in range(40) if shard_of(f"p{i}", 3) == 0][:5]
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        await index(app, "EUCLID").upsert([{"id": i, "values": [1, 0, 0]} for i in ids])
    config = app_dir / "raydo.toml"
    three = config.read_text()
    config.write_text(three.replace("dimensions = 3", "dimensions = 4", 1))
    new_ids = [f"q{i}" for i in range(30)]
    assert len({shard_of(i, 3) for i in new_ids}) == 3
    spanning = [{"id": i, "values": [1, 0, 0, 0]} for i in new_ids]
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        with pytest.raises(VectorizeError, match="holds vectors of 3 dimensions"):
            await index(app, "EUCLID").upsert(spanning)
        # The empty shards did not take the new shape, nor any vector.
        shards = await index(app, "EUCLID").shard_status()
        assert [(s["count"], s["dimensions"]) for s in shards] == [(5, 3), (0, None), (0, None)]
    config.write_text(three)
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:
        assert (await index(app, "EUCLID").describe()).vector_count == 5


@pytest.mark.parametrize(
    "entry, key, message",
    [
        ('index_name = "i"', "dimensions", "give dimensions or a preset"),
        ('index_name = "i"\ndimensions = 2000', "dimensions", "max_dimensions"),
        ('index_name = "i"\npreset = "nope"', "preset", "expected one of"),
        ('index_name = "i"\ndimensions = 3\nmetric = "hamming"', "metric", "expected one of"),
        ('index_name = "I/x"\ndimensions = 3', "index_name", "an index name"),
        ('index_name = "i"\ndimensions = 3\nmax_top_k = 0', "max_top_k", "integer"),
        (
            'index_name = "i"\ndimensions = 3\ngraph_build_wait_seconds = -1',
            "graph_build_wait_seconds",
            "a number from 0",
        ),
    ],
)
def test_config_errors(tmp_path: Path, entry: str, key: str, message: str) -> None:
    (tmp_path / "raydo.toml").write_text(
        f'name = "v"\nmain = "app:app"\n[[vectorize]]\nbinding = "V"\n{entry}\n'
    )
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(tmp_path)
    assert caught.value.key.endswith(key)


def test_a_preset_gives_the_shape(app_dir: Path) -> None:
    entry = next(e for e in load_config(app_dir).vectorize if e["binding"] == "BGE")
    assert (entry["dimensions"], entry["metric"]) == (384, "cosine")


async def test_over_http_in_process_and_on_ray(app_dir: Path, placement: Placement) -> None:
    async with start_app(app_dir, **placement) as app:
        await app.http.post(
            "/upsert?index=EUCLID",
            json=[{"id": f"p{i}", "values": [i, 0, 0], "metadata": {"i": i}} for i in range(30)],
        )
        reply = await app.http.post(
            "/query?index=EUCLID",
            json={"vector": [7.1, 0, 0], "top_k": 2, "return_metadata": "all"},
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["count"] == 2 and [m[0] for m in body["matches"]] == ["p7", "p8"]
        assert body["matches"][0][2] == {"i": 7}
        euclid = index(app, "EUCLID")
        await euclid.delete_by_ids(["p7"])
        found = await euclid.query([7.1, 0, 0], top_k=1)
        assert found.matches[0].id == "p8"
        assert (await euclid.describe()).vector_count == 29
        # Each of the index's 3 shards has a host of its own (on Ray, a process of its own),
        # so the index holds what 3 hosts can.
        spec = runtime_spec(load_config(app_dir))
        store = spec.binding(VECTORIZE_BINDING)
        ids = [spec.id_scheme(store).from_name(shard_name("points", n)).hex for n in range(3)]
        assert len({spec.host_for(store, hex_id) for hex_id in ids}) == 3
        if placement:
            pids = {
                await host_actor(spec, VECTORIZE_BINDING, hex_id).pid.remote() for hex_id in ids
            }
            assert len(pids) == 3, pids
