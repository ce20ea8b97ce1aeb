"""Tests for storage.layout: the one place the layout of an app's storage is said."""

from __future__ import annotations

from pathlib import Path

from raydo.storage import layout

HEX = "ab" + "0" * 62


def test_an_objects_file_sits_in_the_folder_of_its_ids_first_two_digits(tmp_path: Path) -> None:
    assert layout.object_file(tmp_path, "ROOM", HEX) == tmp_path / "ROOM" / "ab" / f"{HEX}.sqlite"
    assert layout.object_file(str(tmp_path), "ROOM", HEX) == layout.object_file(
        tmp_path, "ROOM", HEX
    )


def test_the_alarm_index_sits_beside_the_objects_folders(tmp_path: Path) -> None:
    assert layout.alarm_index_file(tmp_path, "ROOM") == tmp_path / "ROOM" / "_alarms.sqlite"
    assert layout.binding_folder(tmp_path, "ROOM") == tmp_path / "ROOM"


def test_only_files_where_object_file_puts_them_are_objects(tmp_path: Path) -> None:
    other = "cd" + "1" * 62
    for object_hex in (HEX, other):
        path = layout.object_file(tmp_path, "ROOM", object_hex)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        path.with_name(path.name + "-wal").touch()
    folder = tmp_path / "ROOM"
    layout.alarm_index_file(tmp_path, "ROOM").touch()
    (folder / "ab" / f".{HEX}.sqlite.import").touch()  # a half-written import
    (folder / "ab" / f"{'ef' * 32}.sqlite").touch()  # in another id's folder
    (folder / "ab" / f"{'AB' * 32}.sqlite").touch()  # not lowercase hex
    (folder / "ab" / "notes.sqlite").touch()
    assert sorted(layout.object_hexes(tmp_path, "ROOM")) == [HEX, other]
    assert list(layout.object_hexes(tmp_path, "NONE")) == []


def test_the_table_names_are_raydos_own() -> None:
    assert layout.RAYDO_TABLES == ("_raydo_kv", "_raydo_meta", "_raydo_sockets")
    assert all(t.startswith(layout.INTERNAL_PREFIX) for t in layout.RAYDO_TABLES)
    assert layout.ALARM_INDEX_TABLE == "alarms"
