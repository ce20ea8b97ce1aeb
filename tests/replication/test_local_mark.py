"""The local mark, written in place after every round: two slots, the newer whole one read,
a torn write losing nothing but itself, and the first format still read and replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from raydo.storage.replication.local_mark import (
    SLOT_BYTES,
    LocalMark,
    mark_file,
    read_mark,
    write_mark,
)
from raydo.storage.replication.wal import WalPosition


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "object.sqlite"
    path.write_bytes(b"")
    return path


def _mark(seq: int) -> LocalMark:
    return LocalMark(seq, WalPosition(b"\x01" * 8, 32 + 4120 * seq), seq // 10, 100 * seq)


def test_each_write_is_read_back_and_the_file_stays_two_slots(database: Path) -> None:
    for seq in range(1, 8):
        write_mark(database, _mark(seq))
        assert read_mark(database) == _mark(seq)
    assert mark_file(database).stat().st_size <= 2 * SLOT_BYTES


def test_a_torn_write_leaves_the_mark_before_it(database: Path) -> None:
    write_mark(database, _mark(1))
    write_mark(database, _mark(2))  # the second slot
    raw = bytearray(mark_file(database).read_bytes())
    raw[SLOT_BYTES + 20] ^= 0xFF  # the write of mark 2 was cut short
    mark_file(database).write_bytes(bytes(raw))
    assert read_mark(database) == _mark(1)
    write_mark(database, _mark(3))  # goes over the damaged slot, not the good one
    assert read_mark(database) == _mark(3)
    raw = bytearray(mark_file(database).read_bytes())
    raw[10] ^= 0xFF  # now the slot of mark 1
    mark_file(database).write_bytes(bytes(raw))
    assert read_mark(database) == _mark(3)


def test_a_mark_of_the_first_format_is_read_then_replaced(database: Path) -> None:
    mark_file(database).write_text(
        '{"seq": 4, "wal": {"salts": "0101010101010101", "offset": 16512},'
        ' "snapshot": 0, "since_snapshot": 400}'
    )
    old = _mark(4)  # without the CRC of what was shipped, which that format did not keep
    assert read_mark(database) == LocalMark(old.seq, WalPosition(b"\x01" * 8, 16512, None), 0, 400)
    write_mark(database, _mark(5))
    assert read_mark(database) == _mark(5)
    assert mark_file(database).stat().st_size <= SLOT_BYTES


@pytest.mark.parametrize(
    "damage", [b"", b"RMK2", b"RMK2" + b"\xff" * 600, b"\x00" * 1024, b"{not json"]
)
def test_damage_is_no_mark(database: Path, damage: bytes) -> None:
    mark_file(database).write_bytes(damage)
    assert read_mark(database) is None
    write_mark(database, _mark(1))
    assert read_mark(database) == _mark(1)


def test_no_database_is_no_mark(database: Path) -> None:
    write_mark(database, _mark(1))
    database.unlink()
    assert read_mark(database) is None
