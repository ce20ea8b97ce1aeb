"""Key-value storage: the get/put/delete/list semantics the docstrings promise, on real files."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from raydo.storage import StorageCore, codec
from raydo.storage.limits import LimitExceeded, Limits
from tests.storage.conftest import StandaloneStorage

MakeStorage = Callable[..., StandaloneStorage]


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


def committed_kv(path: Path) -> dict[str, Any]:
    """What another connection sees: only committed pairs."""
    conn = sqlite3.connect(path)
    try:
        has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_raydo_kv'").fetchone()
        if not has_table:
            return {}
        rows = conn.execute("SELECT key, value FROM _raydo_kv ORDER BY key").fetchall()
    finally:
        conn.close()
    return {k: codec.decode(v) for k, v in rows}


# ---- get / put / delete -----------------------------------------------------------------


def test_get_returns_default_for_missing_keys(storage: StandaloneStorage) -> None:
    storage.put("present", 1)
    assert storage.get("missing") is None
    assert storage.get("missing", 42) == 42
    sentinel = object()
    assert storage.get("missing", sentinel) is sentinel


def test_put_then_get_round_trips_values(storage: StandaloneStorage) -> None:
    values = {
        "str": "héllo",
        "bytes": b"\x00\x01",
        "int": 2**100,
        "neg": -(2**63),
        "float": 0.1,
        "bool": False,
        "list": [1, [2, (3,)]],
        "dict": {"a": {1: b"x"}},
        "when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    }
    for key, value in values.items():
        storage.put(key, value)
    assert storage.get("list") == [1, [2, [3]]]
    for key, value in values.items():
        if key != "list":
            assert storage.get(key) == value
    storage.commit()
    assert committed_kv(storage.path)["int"] == 2**100


def test_stored_none_is_not_the_default(storage: StandaloneStorage) -> None:
    storage.put("k", None)
    assert storage.get("k", "default") is None
    assert storage.get_many(["k"]) == {"k": None}
    assert storage.list() == {"k": None}


def test_put_overwrites(storage: StandaloneStorage) -> None:
    storage.put("k", 1)
    storage.commit()
    storage.put("k", "two")
    assert storage.get("k") == "two"
    storage.commit()
    assert committed_kv(storage.path) == {"k": "two"}


def test_delete_reports_whether_the_key_existed(storage: StandaloneStorage) -> None:
    storage.put("a", 1)
    assert storage.delete("a") is True
    assert storage.delete("a") is False
    assert storage.get("a") is None
    assert storage.delete("never") is False


def test_get_many_leaves_out_missing_keys_in_key_order(storage: StandaloneStorage) -> None:
    storage.put_many({"b": 2, "a": 1, "é": 3, "c": 4})
    result = storage.get_many(["é", "missing", "a", "b", "a"])
    assert list(result.items()) == [("a", 1), ("b", 2), ("é", 3)]
    assert storage.get_many([]) == {}
    assert storage.get_many(iter(["c"])) == {"c": 4}
    assert storage.get_many(k for k in ("zz", "yy")) == {}


def test_get_many_beyond_sql_params_chunks(make_storage: MakeStorage) -> None:
    storage = make_storage(limits=Limits(sql_params=3))
    entries = {f"k{i:02}": i for i in range(10)}
    storage.put_many(entries)
    assert storage.get_many([*entries, "nope"]) == entries


def test_put_many_writes_every_pair(storage: StandaloneStorage) -> None:
    storage.put_many({"x": 1, "y": [2], "z": None})
    assert storage.list() == {"x": 1, "y": [2], "z": None}
    storage.put_many({})
    assert storage.list() == {"x": 1, "y": [2], "z": None}


def test_put_many_requires_a_mapping(storage: StandaloneStorage) -> None:
    with pytest.raises(TypeError, match="mapping"):
        storage.put_many([("a", 1)])  # type: ignore[arg-type]
    assert storage.list() == {}


def test_delete_many_counts_existing_keys_once(storage: StandaloneStorage) -> None:
    storage.put_many({"a": 1, "b": 2, "c": 3})
    assert storage.delete_many(["a", "a", "b", "missing"]) == 2
    assert storage.list() == {"c": 3}
    assert storage.delete_many([]) == 0
    assert storage.delete_many(["a"]) == 0
    assert storage.delete_many(iter(["c"])) == 1
    assert storage.list() == {}


def test_empty_key_is_allowed(storage: StandaloneStorage) -> None:
    storage.put("", "empty")
    storage.put("a", "a")
    assert storage.get("") == "empty"
    assert list(storage.list()) == ["", "a"]
    assert list(storage.list(prefix="")) == ["", "a"]
    assert list(storage.list(start="")) == ["", "a"]
    assert storage.list(end="") == {}
    assert storage.delete("") is True
    assert storage.get("", 0) == 0


def test_nul_in_keys_keeps_keys_distinct(make_storage: MakeStorage, db_path: Path) -> None:
    storage = make_storage()
    storage.put_many({"a": 1, "a\x00": 2, "a\x00b": 3, "\x00": 4})
    assert storage.get("a") == 1
    assert storage.get("a\x00") == 2
    assert storage.get("a\x00b") == 3
    assert storage.get("\x00") == 4
    assert list(storage.list(prefix="a\x00")) == ["a\x00", "a\x00b"]
    assert list(storage.list()) == ["\x00", "a", "a\x00", "a\x00b"]
    assert storage.delete("a\x00") is True
    assert storage.get("a") == 1
    storage.commit()
    storage.close()
    again = make_storage()
    assert again.get_many(["a", "a\x00", "a\x00b", "\x00"]) == {"a": 1, "a\x00b": 3, "\x00": 4}


def test_path_like_keys_stay_inside_the_file(tmp_path: Path, make_storage: MakeStorage) -> None:
    path = tmp_path / "object.sqlite"
    storage = make_storage(path)
    keys = ["../../etc/passwd", "/etc/passwd", "..\\..\\boot.ini", "a/b/c", ".", ".."]
    for key in keys:
        storage.put(key, key.upper())
    storage.commit()
    assert {k: storage.get(k) for k in keys} == {k: k.upper() for k in keys}
    found = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    assert "object.sqlite" in found
    assert found <= {"object.sqlite", "object.sqlite-wal", "object.sqlite-shm"}


# ---- key and value checks ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [1, b"key", None, 1.5, ("a",), ["a"]], ids=repr)
def test_keys_must_be_str(storage: StandaloneStorage, bad: Any) -> None:
    with pytest.raises(TypeError, match="storage keys are str"):
        storage.get(bad)
    with pytest.raises(TypeError, match="storage keys are str"):
        storage.put(bad, 1)
    with pytest.raises(TypeError, match="storage keys are str"):
        storage.delete(bad)
    with pytest.raises(TypeError, match="storage keys are str"):
        storage.delete_many(["ok", bad])
    if bad is not None:  # None is the "no bound" default of list()
        for bound in ("prefix", "start", "end"):
            with pytest.raises(TypeError, match="storage keys are str"):
                storage.list(**{bound: bad})
    assert storage.list() == {}


@pytest.mark.parametrize("bad", [1, b"key", None, 1.5, ("a",)], ids=repr)
def test_get_many_and_put_many_check_key_types(storage: StandaloneStorage, bad: Any) -> None:
    with pytest.raises(TypeError, match="storage keys are str"):
        storage.get_many(["ok", bad])
    with pytest.raises(TypeError, match="storage keys are str"):
        storage.put_many({"ok": 1, bad: 2})
    assert storage.list() == {}


def test_keys_with_lone_surrogates_are_refused(storage: StandaloneStorage) -> None:
    for call in (
        lambda: storage.get("a\ud800"),
        lambda: storage.put("a\ud800", 1),
        lambda: storage.delete("\udfff"),
        lambda: storage.get_many(["ok", "\ud800"]),
        lambda: storage.put_many({"ok": 1, "\ud800": 2}),
        lambda: storage.list(prefix="\ud800"),
    ):
        with pytest.raises(ValueError, match="lone surrogates"):
            call()
    assert storage.list() == {}


def test_key_over_key_bytes_is_refused_and_nothing_written(
    make_storage: MakeStorage, db_path: Path
) -> None:
    storage = make_storage(limits=Limits(key_bytes=16))
    storage.put("x" * 16, "fits")
    storage.put("é" * 8, "fits too")  # 16 UTF-8 bytes
    storage.commit()
    for key in ("x" * 17, "é" * 9, "€" * 6):  # 17, 18 and 18 bytes
        with pytest.raises(LimitExceeded) as info:
            storage.put(key, "too long")
        assert info.value.limit == "key_bytes"
        assert "key_bytes" in str(info.value)
    with pytest.raises(LimitExceeded) as info:
        storage.put_many({"short": 1, "y" * 17: 2})
    assert info.value.limit == "key_bytes"
    for call in (
        lambda: storage.get("x" * 17),
        lambda: storage.delete("x" * 17),
        lambda: storage.get_many(["x" * 17]),
        lambda: storage.delete_many(["short", "x" * 17]),
        lambda: storage.list(prefix="x" * 17),
    ):
        with pytest.raises(LimitExceeded):
            call()
    assert storage.list() == {"x" * 16: "fits", "é" * 8: "fits too"}
    storage.commit()
    assert committed_kv(db_path) == {"x" * 16: "fits", "é" * 8: "fits too"}


def test_limit_exceeded_is_a_value_error() -> None:
    assert issubclass(LimitExceeded, ValueError)


def test_value_over_value_bytes_is_refused_and_nothing_written(
    make_storage: MakeStorage, db_path: Path
) -> None:
    storage = make_storage(limits=Limits(value_bytes=100))
    fits = b"x" * 98
    assert len(codec.encode(fits)) == 100
    too_big = b"x" * 99
    assert len(codec.encode(too_big)) == 101
    storage.put("k", "old")
    storage.commit()

    storage.put("exact", fits)
    with pytest.raises(LimitExceeded) as info:
        storage.put("k", too_big)
    assert info.value.limit == "value_bytes"
    assert "'k'" in str(info.value)
    assert storage.get("k") == "old"  # the failed put changed nothing, even uncommitted
    storage.commit()
    assert committed_kv(db_path) == {"exact": fits, "k": "old"}

    with pytest.raises(LimitExceeded) as info:
        storage.put_many({"a": 1, "k": "new", "big": too_big, "z": 2})
    assert info.value.limit == "value_bytes"
    assert storage.list() == {"exact": fits, "k": "old"}
    storage.commit()
    assert committed_kv(db_path) == {"exact": fits, "k": "old"}


def test_unencodable_value_is_refused_and_nothing_written(storage: StandaloneStorage) -> None:
    storage.put("k", 1)
    with pytest.raises(codec.EncodeError, match="set"):
        storage.put("k", {1, 2})
    with pytest.raises(codec.EncodeError):
        storage.put_many({"a": 1, "b": object()})
    assert storage.list() == {"k": 1}


# ---- list -------------------------------------------------------------------------------


@pytest.fixture
def abcd(storage: StandaloneStorage) -> StandaloneStorage:
    storage.put_many({"a": 1, "b": 2, "c": 3, "d": 4})
    return storage


def items(result: dict[str, Any]) -> list[str]:
    return list(result)


def test_list_reference_scenario_21(abcd: StandaloneStorage) -> None:
    assert items(abcd.list()) == ["a", "b", "c", "d"]
    assert items(abcd.list(start="b")) == ["b", "c", "d"]
    assert items(abcd.list(end="c")) == ["a", "b"]
    assert items(abcd.list(prefix="b")) == ["b"]
    assert items(abcd.list(reverse=True, limit=2)) == ["d", "c"]
    with pytest.raises(ValueError, match="positive"):
        abcd.list(limit=0)
    assert abcd.list(start="b") == {"b": 2, "c": 3, "d": 4}  # values come along


def test_list_combinations(abcd: StandaloneStorage) -> None:
    assert items(abcd.list(start="b", end="d")) == ["b", "c"]
    assert items(abcd.list(start="b", end="d", reverse=True)) == ["c", "b"]
    assert items(abcd.list(start="b", end="d", reverse=True, limit=1)) == ["c"]
    assert items(abcd.list(start="b", limit=2)) == ["b", "c"]
    assert items(abcd.list(end="c", reverse=True)) == ["b", "a"]
    assert items(abcd.list(limit=1)) == ["a"]
    assert items(abcd.list(limit=10)) == ["a", "b", "c", "d"]
    assert items(abcd.list(reverse=True)) == ["d", "c", "b", "a"]
    assert items(abcd.list(start="bb")) == ["c", "d"]
    assert items(abcd.list(end="bb")) == ["a", "b"]
    assert abcd.list(start="c", end="c") == {}
    assert abcd.list(start="d", end="b") == {}
    assert abcd.list(start="e") == {}
    assert abcd.list(prefix="e") == {}
    assert abcd.list(prefix="b", start="c") == {}
    assert abcd.list(prefix="c", end="c") == {}
    assert items(abcd.list(prefix="c", start="a", end="z")) == ["c"]


def test_list_prefix_intersects_start_and_end(storage: StandaloneStorage) -> None:
    storage.put_many({k: k for k in ("a", "aa", "ab", "abc", "ac", "b", "ba", "bb", "c")})
    assert items(storage.list(prefix="a")) == ["a", "aa", "ab", "abc", "ac"]
    assert items(storage.list(prefix="a", start="ab")) == ["ab", "abc", "ac"]
    assert items(storage.list(prefix="a", end="ab")) == ["a", "aa"]
    assert items(storage.list(prefix="a", start="aa", end="ac")) == ["aa", "ab", "abc"]
    assert items(storage.list(prefix="a", start="0", end="zz")) == ["a", "aa", "ab", "abc", "ac"]
    assert items(storage.list(prefix="b", start="a")) == ["b", "ba", "bb"]
    assert items(storage.list(prefix="b", end="c")) == ["b", "ba", "bb"]
    assert storage.list(prefix="a", start="b") == {}
    assert storage.list(prefix="b", end="b") == {}
    assert items(storage.list(prefix="a", reverse=True, limit=2)) == ["ac", "abc"]
    assert items(storage.list(prefix="ab", reverse=True)) == ["abc", "ab"]


def test_list_uses_utf8_byte_order(storage: StandaloneStorage) -> None:
    keys = ["z", "é", "\u00ff", "\u0100", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0010ffff"]
    keys += ["", "A", "a", "~", "\x7f", "\x00", "é\x00"]
    storage.put_many({k: i for i, k in enumerate(keys)})
    by_bytes = sorted(keys, key=utf8)
    # UTF-16 order (JavaScript's) differs: a supplementary character sorts before U+FFFF there
    assert by_bytes != sorted(keys, key=lambda k: k.encode("utf-16-be"))
    assert items(storage.list()) == by_bytes
    assert items(storage.list(reverse=True)) == by_bytes[::-1]
    assert items(storage.get_many(keys)) == by_bytes
    assert items(storage.list(start="\uffff")) == ["\uffff", "\U00010000", "\U0010ffff"]
    assert items(storage.list(end="\U00010000", start="\ue000")) == ["\ue000", "\uffff"]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (
            "a\U0010ffff",
            ["a\U0010ffff", "a\U0010ffff\x00", "a\U0010ffffz", "a\U0010ffff\U0010ffff"],
        ),
        ("\uffff", ["\uffff", "\uffffa", "\uffff\U00010000"]),
        ("\U0010ffff", ["\U0010ffff", "\U0010ffffa", "\U0010ffff\U0010ffff"]),
        ("\U0010ffff\U0010ffff", ["\U0010ffff\U0010ffff"]),
        ("\ud7ff", ["\ud7ff", "\ud7ffx"]),
        ("é", ["é", "é\x00", "éa"]),
    ],
    ids=repr,
)
def test_list_prefix_ending_in_high_code_points(
    storage: StandaloneStorage, prefix: str, expected: list[str]
) -> None:
    keys = [
        "a",
        "a\U0010fffe",
        "a\U0010ffff",
        "a\U0010ffff\x00",
        "a\U0010ffffz",
        "a\U0010ffff\U0010ffff",
        "b",
        "\ufffe",
        "\uffff",
        "\uffffa",
        "\uffff\U00010000",
        "\U00010000",
        "\U0010fffe",
        "\U0010ffff",
        "\U0010ffffa",
        "\U0010ffff\U0010ffff",
        "\ud7ff",
        "\ud7ffx",
        "\ue000",
        "é",
        "é\x00",
        "éa",
        "ê",
    ]
    storage.put_many({k: None for k in keys})
    assert items(storage.list(prefix=prefix)) == expected
    assert items(storage.list(prefix=prefix, reverse=True)) == expected[::-1]
    assert items(storage.list(prefix=prefix, limit=1)) == expected[:1]


def test_list_matches_a_brute_force_model(storage: StandaloneStorage) -> None:
    keys = [
        "",
        "a",
        "ab",
        "abc",
        "b",
        "b\x00",
        "ba",
        "é",
        "éé",
        "\uffff",
        "\U00010000",
        "\U0010ffff",
    ]
    storage.put_many({k: len(k) for k in keys})
    bounds: list[str | None] = [None, "", "a", "ab", "b", "bz", "é", "\uffff", "\U0010ffff"]
    prefixes: list[str | None] = [None, "", "a", "ab", "b", "é", "\uffff", "\U0010ffff", "z"]
    ordered = sorted(keys, key=utf8)
    checked = 0
    for prefix in prefixes:
        for start in bounds:
            for end in bounds:
                for reverse in (False, True):
                    for limit in (None, 1, 2):
                        want = [
                            k
                            for k in ordered
                            if (prefix is None or k.startswith(prefix))
                            and (start is None or utf8(k) >= utf8(start))
                            and (end is None or utf8(k) < utf8(end))
                        ]
                        if reverse:
                            want.reverse()
                        if limit is not None:
                            want = want[:limit]
                        got = storage.list(
                            prefix=prefix, start=start, end=end, reverse=reverse, limit=limit
                        )
                        assert items(got) == want, (prefix, start, end, reverse, limit)
                        assert all(got[k] == len(k) for k in got)
                        checked += 1
    assert checked == len(prefixes) * len(bounds) ** 2 * 2 * 3


@pytest.mark.parametrize("limit", [0, -1, -100, True, False, 1.0, "2", 2.5], ids=repr)
def test_list_limit_must_be_a_positive_int(abcd: StandaloneStorage, limit: Any) -> None:
    with pytest.raises(ValueError, match="limit must be a positive int"):
        abcd.list(limit=limit)


def test_list_on_empty_storage(storage: StandaloneStorage) -> None:
    storage.put("x", 1)
    storage.delete("x")
    assert storage.list() == {}
    assert storage.list(prefix="x", reverse=True, limit=3) == {}


# ---- the file ---------------------------------------------------------------------------


def test_fresh_storage_on_missing_file_reads_defaults_without_creating_it(
    tmp_path: Path, make_storage: MakeStorage
) -> None:
    folder = tmp_path / "never" / "made"
    path = folder / "object.sqlite"
    storage = make_storage(path)
    assert storage.is_open is False
    assert storage.get("k") is None
    assert storage.get("k", "dflt") == "dflt"
    assert storage.get_many(["a", "b"]) == {}
    assert storage.list() == {}
    assert storage.list(prefix="a", reverse=True, limit=1) == {}
    assert storage.delete("k") is False
    assert storage.delete_many(["a", "b"]) == 0
    storage.put_many({})
    assert storage.size_bytes == 0
    storage.delete_all()
    storage.commit()
    storage.rollback()
    storage.close()
    assert storage.is_open is False
    assert not path.exists()
    assert not (tmp_path / "never").exists()


def test_first_write_creates_file_and_folder(tmp_path: Path, make_storage: MakeStorage) -> None:
    path = tmp_path / "ns" / "ab" / "abcd.sqlite"
    storage = make_storage(path)
    storage.put("k", 1)
    assert storage.is_open
    assert path.exists()
    storage.commit()
    assert committed_kv(path) == {"k": 1}


def test_reads_see_uncommitted_writes_and_others_do_not(
    storage: StandaloneStorage, db_path: Path
) -> None:
    storage.put("committed", 1)
    storage.commit()
    storage.put("pending", 2)
    storage.put("committed", 10)
    storage.delete("committed")
    storage.put("committed", 11)
    assert storage.core.connection().in_transaction
    assert storage.get("pending") == 2
    assert storage.get("committed") == 11
    assert storage.get_many(["pending", "committed"]) == {"committed": 11, "pending": 2}
    assert storage.list() == {"committed": 11, "pending": 2}
    assert committed_kv(db_path) == {"committed": 1}  # another connection sees only commits
    storage.commit()
    assert not storage.core.connection().in_transaction
    assert committed_kv(db_path) == {"committed": 11, "pending": 2}


def test_rollback_drops_uncommitted_and_keeps_committed(
    storage: StandaloneStorage, db_path: Path
) -> None:
    storage.put_many({"a": 1, "b": 2})
    storage.commit()
    storage.put("a", "changed")
    storage.delete("b")
    storage.put("c", 3)
    storage.rollback()
    assert storage.list() == {"a": 1, "b": 2}
    assert committed_kv(db_path) == {"a": 1, "b": 2}
    storage.rollback()  # nothing pending: a no-op
    storage.commit()  # nothing pending: a no-op
    assert storage.list() == {"a": 1, "b": 2}


def test_rollback_of_the_first_write_leaves_a_usable_storage(storage: StandaloneStorage) -> None:
    # the first put makes the KV table; rolling it back must not leave the storage thinking
    # the table exists
    storage.put("a", 1)
    storage.rollback()
    assert storage.get("a") is None
    assert storage.get_many(["a"]) == {}
    assert storage.list() == {}
    assert storage.delete("a") is False
    assert storage.delete_many(["a"]) == 0
    storage.put("b", 2)
    storage.commit()
    assert storage.list() == {"b": 2}


def test_close_then_reopen_shows_committed_data_only(
    make_storage: MakeStorage, db_path: Path
) -> None:
    storage = make_storage()
    storage.put("kept", [1, 2])
    storage.commit()
    storage.put("lost", "x")
    storage.put("kept", "overwritten but not committed")
    storage.close()
    assert storage.is_open is False
    assert committed_kv(db_path) == {"kept": [1, 2]}
    reopened = make_storage()
    assert reopened.get("kept") == [1, 2]
    assert reopened.get("lost") is None
    assert reopened.list() == {"kept": [1, 2]}
    # a closed storage opens its file again on the next call
    assert storage.get("kept") == [1, 2]
    assert storage.is_open


@pytest.mark.parametrize(("durability", "level"), [("full", 2), ("normal", 1)])
def test_durability_sets_synchronous(
    make_storage: MakeStorage, durability: str, level: int
) -> None:
    storage = make_storage(durability=durability)
    storage.put("k", 1)
    storage.commit()
    assert storage.durability == durability
    assert storage.core.internal("PRAGMA synchronous").fetchone()[0] == level
    assert storage.core.internal("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_durability_is_normal(storage: StandaloneStorage) -> None:
    storage.put("k", 1)
    assert storage.core.internal("PRAGMA synchronous").fetchone()[0] == 1


@pytest.mark.parametrize("durability", ["FULL", "off", "", "extra", "Normal"])
def test_bad_durability_is_refused(db_path: Path, durability: str) -> None:
    with pytest.raises(ValueError, match="durability"):
        StorageCore(db_path, durability=durability)
    assert not db_path.exists()


def test_file_is_wal_mode_for_other_readers(storage: StandaloneStorage, db_path: Path) -> None:
    storage.put("k", 1)
    storage.commit()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_file_opens_with_sqlite_utils(storage: StandaloneStorage, db_path: Path) -> None:
    values = {
        "n": 2**80,
        "when": dt.datetime(2022, 2, 2, 2, 2, 2, tzinfo=dt.timezone(dt.timedelta(hours=-7))),
        "blob": b"\x00\x01",
        "text": "ünïcode",
        "nested": {"a": [1, None, True]},
    }
    storage.put_many(values)
    storage.commit()
    db = sqlite_utils.Database(db_path)
    try:
        assert "_raydo_kv" in db.table_names()
        table = db["_raydo_kv"]
        assert isinstance(table, sqlite_utils.db.Table)
        assert table.pks == ["key"]
        assert {c.name: c.type for c in table.columns} == {"key": "TEXT", "value": "BLOB"}
        assert table.count == len(values)
        decoded = {row["key"]: codec.decode(row["value"]) for row in table.rows}
    finally:
        db.conn.close()
    assert decoded == values
