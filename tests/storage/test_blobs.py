"""The blob backends' shared pieces: ranges, conditions, keys, cursors (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from raydo.storage.blobs import (
    BlobMeta,
    Conditions,
    InvalidArgument,
    InvalidKey,
    InvalidRange,
    Range,
    check_key,
)
from raydo.storage.blobs._index import decode_cursor, encode_cursor, successor
from raydo.storage.limits import DEFAULT_LIMITS, LimitExceeded

WHEN = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
META = BlobMeta("k", 10, "abc", WHEN, "v1")


@pytest.mark.parametrize(
    ("given", "size", "expected"),
    [
        (Range(offset=2, length=3), 10, (2, 3)),
        (Range(offset=2), 10, (2, 8)),
        (Range(length=4), 10, (0, 4)),
        (Range(offset=8, length=100), 10, (8, 2)),
        (Range(suffix=3), 10, (7, 3)),
        (Range(suffix=30), 10, (0, 10)),
        (Range(offset=0), 0, (0, 0)),
        (Range(suffix=5), 0, (0, 0)),
    ],
)
def test_ranges_resolve_like_r2(given: Range, size: int, expected: tuple[int, int]) -> None:
    assert given.resolve(size) == expected


@pytest.mark.parametrize("offset", [10, 11, 2**63])
def test_a_range_past_the_end_is_refused(offset: int) -> None:
    with pytest.raises(InvalidRange):
        Range(offset=offset).resolve(10)


@pytest.mark.parametrize(
    "bad",
    [
        {"offset": -1},
        {"length": -1},
        {"suffix": 0},
        {"suffix": -2},
        {"suffix": 1, "length": 1},
        {},
        {"offset": True},
        {"offset": 1.5},
        {"end": 3},
    ],
)
def test_malformed_ranges_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        Range.coerce(bad)  # type: ignore[arg-type]


def test_conditions_follow_http_precedence() -> None:
    assert Conditions(etag_matches="abc").holds(META)
    assert Conditions(etag_matches='"abc"').holds(META)
    assert Conditions(etag_matches='W/"abc"').holds(META)
    assert Conditions(etag_matches=["x", "abc"]).holds(META)
    assert Conditions(etag_matches='"x", "abc"').holds(META)
    assert Conditions(etag_matches="*").holds(META)
    assert not Conditions(etag_matches="x").holds(META)
    assert not Conditions(etag_does_not_match="abc").holds(META)
    assert not Conditions(etag_does_not_match="*").holds(META)
    assert Conditions(etag_does_not_match="x").holds(META)
    before, after = WHEN - timedelta(days=1), WHEN + timedelta(days=1)
    assert Conditions(uploaded_before=after).holds(META)
    assert not Conditions(uploaded_before=before).holds(META)
    assert Conditions(uploaded_after=before).holds(META)
    assert not Conditions(uploaded_after=after).holds(META)
    assert not Conditions(uploaded_after=WHEN).holds(META)  # "after", to the second
    # A matching etag makes uploaded_before moot; a non-matching one uploaded_after.
    assert Conditions(etag_matches="abc", uploaded_before=before).holds(META)
    assert Conditions(etag_does_not_match="x", uploaded_after=after).holds(META)
    # Naive datetimes are UTC.
    assert Conditions(uploaded_before=after.replace(tzinfo=None)).holds(META)
    # With no object, only etag_matches fails.
    assert not Conditions(etag_matches="*").holds(None)
    assert Conditions(etag_does_not_match="*", uploaded_before=before).holds(None)


def test_keys() -> None:
    assert check_key("a/../b", DEFAULT_LIMITS) == b"a/../b"
    assert check_key("\u00e9" * 512, DEFAULT_LIMITS) == "\u00e9".encode() * 512
    for bad in ("", "a\0", "\udc80", None, b"k"):
        with pytest.raises(InvalidKey):
            check_key(bad, DEFAULT_LIMITS)
    with pytest.raises(LimitExceeded) as error:
        check_key("k" * 1025, DEFAULT_LIMITS)
    assert error.value.limit == "blob_key_bytes"


def test_successor_and_cursors() -> None:
    assert successor(b"a/") == b"a0"
    assert successor(b"a\xff") == b"b"
    assert successor(b"\xff\xff") is None
    for position in (b"", b"a/b\x00", "\u4e2d/".encode(), bytes(range(256))):
        assert decode_cursor(encode_cursor(position)) == position
    for bad in ("%%%", "a", "ab=c", "\u00e9"):
        with pytest.raises(InvalidArgument):
            decode_cursor(bad)
