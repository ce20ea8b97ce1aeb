"""The msgpack codec: exact round trips, clear refusals and clear decode failures."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import msgpack
import pytest

from raydo.storage import codec
from raydo.storage.codec import EXT_BIGINT, EXT_DATETIME, DecodeError, EncodeError


def roundtrip(value: Any) -> Any:
    data = codec.encode(value)
    assert isinstance(data, bytes)
    return codec.decode(data)


# ---- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "héllo ✓ 𝄞 \U0010ffff \x00 nul",
        "x" * 70_000,
        b"",
        b"\x00\xff\x80 raw",
        bytes(range(256)) * 300,
        None,
        [],
        {},
        [1, "a", b"b", None, True, 2.5, [[], {}]],
        {"a": {"b": {"c": [1, {"d": [None, b"e"]}]}}},
    ],
    ids=repr,
)
def test_plain_values_round_trip(value: Any) -> None:
    out = roundtrip(value)
    assert out == value
    assert type(out) is type(value)


def test_bytes_and_str_stay_distinct() -> None:
    text = roundtrip("abc")
    blob = roundtrip(b"abc")
    assert text != blob
    assert type(text) is str and text == "abc"
    assert type(blob) is bytes and blob == b"abc"
    assert roundtrip({"s": "x", "b": b"x"}) == {"s": "x", "b": b"x"}
    nested = roundtrip([b"", ""])
    assert type(nested[0]) is bytes and type(nested[1]) is str


@pytest.mark.parametrize(
    "number",
    [
        0,
        1,
        -1,
        127,
        -32,
        2**31,
        2**63 - 1,
        -(2**63),
        2**63,
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        -(2**64),
        2**200 + 12345,
        -(2**200) - 12345,
        10**100,
        -(10**100),
    ],
)
def test_ints_are_exact_at_and_beyond_64_bits(number: int) -> None:
    out = roundtrip(number)
    assert type(out) is int
    assert out == number
    assert roundtrip([number, {"n": number}]) == [number, {"n": number}]


def test_only_ints_outside_msgpack_range_use_the_bigint_extension() -> None:
    def raw(value: int) -> Any:
        return msgpack.unpackb(codec.encode(value))

    assert raw(2**64 - 1) == 2**64 - 1
    assert raw(-(2**63)) == -(2**63)
    big = raw(2**64)
    assert isinstance(big, msgpack.ExtType) and big.code == EXT_BIGINT
    small = raw(-(2**63) - 1)
    assert isinstance(small, msgpack.ExtType) and small.code == EXT_BIGINT
    # signed big-endian, shortest form that still keeps the sign bit
    assert int.from_bytes(big.data, "big", signed=True) == 2**64
    assert int.from_bytes(small.data, "big", signed=True) == -(2**63) - 1


@pytest.mark.parametrize(
    "number", [0.0, 1.5, -2.25, 1e-300, 1.7976931348623157e308, 5e-324, math.pi, math.inf]
)
def test_floats_round_trip_exactly(number: float) -> None:
    for value in (number, -number):
        out = roundtrip(value)
        assert type(out) is float
        assert out == value
        assert math.copysign(1.0, out) == math.copysign(1.0, value)


def test_nan_round_trips() -> None:
    out = roundtrip(math.nan)
    assert type(out) is float and math.isnan(out)


def test_bools_stay_bools_and_ints_stay_ints() -> None:
    assert roundtrip(True) is True
    assert roundtrip(False) is False
    assert type(roundtrip(1)) is int
    assert type(roundtrip(0)) is int
    out = roundtrip([True, 1, False, 0])
    assert [type(x) for x in out] == [bool, int, bool, int]


def test_none_round_trips() -> None:
    assert roundtrip(None) is None
    assert roundtrip({"k": None}) == {"k": None}


def test_nested_containers_round_trip() -> None:
    value = {
        "users": [
            {"name": "ann", "tags": ["a", "b"], "age": 31, "avatar": b"\x89PNG"},
            {"name": "bob", "tags": [], "age": None, "score": 2**70},
        ],
        "meta": {"count": 2, "ok": True, "ratio": 0.5, "deep": [[[[["x"]]]]]},
    }
    assert roundtrip(value) == value


def test_non_str_dict_keys_round_trip() -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9)
    value = {
        7: "int",
        -5: "negative",
        2**70: "bigint",
        1.5: "float",
        b"raw": "bytes",
        None: "none",
        True: "bool",  # == 1, so no int key 1 above
        when: "datetime",
        "s": "str",
    }
    out = roundtrip(value)
    assert out == value
    assert set(map(type, out)) == {int, float, bytes, type(None), bool, dt.datetime, str}
    assert out[2**70] == "bigint"
    assert out[when] == "datetime"


def test_tuple_dict_keys_come_back_as_tuples() -> None:
    # a list cannot be a dict key, so a tuple key cannot come back as one
    value = {(1, 2): "pair", ("a", (b"b", 3)): "nested", "plain": [(1, 2)]}
    out = roundtrip(value)
    assert out == {(1, 2): "pair", ("a", (b"b", 3)): "nested", "plain": [[1, 2]]}
    assert roundtrip([{(1,): {(2,): 3}}]) == [{(1,): {(2,): 3}}]


def test_tuples_come_back_as_lists() -> None:
    out = roundtrip((1, (2, 3), [4, (5,)], {"t": ()}))
    assert out == [1, [2, 3], [4, [5]], {"t": []}]
    assert type(out) is list
    assert type(out[1]) is list
    assert type(out[3]["t"]) is list


def test_naive_datetime_stays_naive() -> None:
    when = dt.datetime(2023, 12, 31, 23, 59, 58, 123456)
    out = roundtrip(when)
    assert type(out) is dt.datetime
    assert out == when
    assert out.tzinfo is None
    assert out.microsecond == 123456


@pytest.mark.parametrize(
    "tz",
    [
        dt.UTC,
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(dt.timedelta(hours=-3, minutes=-30)),
        dt.timezone(dt.timedelta(hours=14)),
    ],
)
def test_aware_datetime_keeps_its_offset(tz: dt.tzinfo) -> None:
    when = dt.datetime(2024, 2, 29, 12, 0, 1, 999999, tzinfo=tz)
    out = roundtrip(when)
    assert out == when
    assert out.tzinfo is not None
    assert out.utcoffset() == when.utcoffset()
    assert out.replace(tzinfo=None) == when.replace(tzinfo=None)  # same wall clock


def test_datetime_uses_the_datetime_extension() -> None:
    ext = msgpack.unpackb(codec.encode(dt.datetime(2020, 1, 2, 3, 4, 5)))
    assert isinstance(ext, msgpack.ExtType)
    assert ext.code == EXT_DATETIME
    assert ext.data == b"2020-01-02T03:04:05"


def test_extreme_datetimes_round_trip() -> None:
    for when in (dt.datetime.min, dt.datetime.max, dt.datetime(1, 1, 1, tzinfo=dt.UTC)):
        assert roundtrip(when) == when


def test_streaming_packer_and_unpacker_use_the_same_extensions() -> None:
    values = [2**80, dt.datetime(2021, 1, 1, tzinfo=dt.UTC), {"a": b"b"}, -(2**90)]
    packer = codec.packer()
    stream = b"".join(packer.pack(v) for v in values)
    unpacker = codec.unpacker(1 << 20)
    unpacker.feed(stream)
    assert list(unpacker) == values


# ---- refusals ---------------------------------------------------------------------------


def test_set_inside_a_dict_inside_a_list_names_path_and_type() -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode([1, {"ok": 2, "bad": {1, 2}}])
    message = str(info.value)
    assert "value[1]['bad']" in message
    assert "set" in message
    assert "cannot be encoded" in message


def test_custom_class_names_path_and_type() -> None:
    class Widget:
        pass

    with pytest.raises(EncodeError) as info:
        codec.encode({"items": [1, 2, Widget()]})
    message = str(info.value)
    assert "value['items'][2]" in message
    assert "Widget" in message


def test_lone_surrogate_names_its_path() -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode(["fine", {"text": "ok \ud800 not ok"}])
    message = str(info.value)
    assert "value[1]['text']" in message
    assert "surrogate" in message


def test_lone_surrogate_in_a_dict_key_names_the_key() -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode({"a": 1, "\udfff": 2})
    message = str(info.value)
    assert "key" in message
    assert "surrogate" in message


def test_unencodable_dict_key_is_named() -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode({frozenset({1}): "x"})
    assert "frozenset" in str(info.value)
    assert "key" in str(info.value)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ({1, 2}, "set"),
        (frozenset(), "frozenset"),
        (dt.date(2020, 1, 1), "date"),
        (dt.time(1, 2), "time"),
        (dt.timedelta(seconds=1), "timedelta"),
        (1 + 2j, "complex"),
        (object(), "object"),
    ],
)
def test_top_level_unencodable_types(value: Any, type_name: str) -> None:
    with pytest.raises(EncodeError) as info:
        codec.encode(value)
    message = str(info.value)
    assert f"has type {type_name}" in message
    assert message.startswith("value ")


def test_encode_error_is_a_type_error() -> None:
    assert issubclass(EncodeError, TypeError)
    assert issubclass(DecodeError, ValueError)


def test_self_referencing_value_is_refused_cleanly() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodeError) as info:
        codec.encode(loop)
    assert "nested over" in str(info.value)


def test_deep_but_finite_nesting_round_trips() -> None:
    value: Any = "leaf"
    for _ in range(200):
        value = [value]
    assert roundtrip(value) == value


# ---- decode failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # the one byte msgpack never uses
        b"\x92\x01",  # array of 2, only 1 item
        b"\xa5abc",  # str of 5, only 3 bytes
        b"\x01\x02",  # extra data after a value
        b"\xff" * 3,
        b"\xa2\xff\xfe",  # a str that is not UTF-8
    ],
    ids=repr,
)
def test_garbage_bytes_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(data)


@pytest.mark.parametrize("code", [0, 3, 5, 42, 127])
def test_unknown_ext_types_raise_decode_error(code: int) -> None:
    data = msgpack.packb(msgpack.ExtType(code, b"payload"))
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert f"unknown msgpack extension type {code}" in str(info.value)
    nested = msgpack.packb({"ok": [1, msgpack.ExtType(code, b"")]})
    with pytest.raises(DecodeError):
        codec.decode(nested)


def test_malformed_datetime_extension_raises_decode_error() -> None:
    data = msgpack.packb(msgpack.ExtType(EXT_DATETIME, b"not a date"))
    with pytest.raises(DecodeError):
        codec.decode(data)


def test_decode_of_non_bytes_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        codec.decode("not bytes")  # type: ignore[arg-type]
