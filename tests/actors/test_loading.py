"""Importing an app's code by reference, several apps in one process."""

from __future__ import annotations

import sys
from pathlib import Path

from raydo.actors import forget_app_modules
from raydo.actors._loading import import_from_app

REPO = Path(__file__).resolve().parents[2]


def _app(folder: Path, text: str) -> Path:
    folder.mkdir()
    (folder / "shared_name_module.py").write_text(f"VALUE = {text!r}\n")
    return folder


def test_two_apps_with_a_module_of_the_same_name_each_get_their_own(tmp_path: Path) -> None:
    first = _app(tmp_path / "first", "one")
    second = _app(tmp_path / "second", "two")
    assert import_from_app(str(first), "shared_name_module:VALUE") == "one"
    assert import_from_app(str(second), "shared_name_module:VALUE") == "two"
    assert import_from_app(str(first), "shared_name_module:VALUE") == "one"


def test_what_an_apps_module_imports_in_turn_is_that_apps_own_too(tmp_path: Path) -> None:
    # A Worker's main module that takes its Durable Objects from a sibling module, in two
    # apps whose sibling modules share a name: each main gets its own sibling.
    for name in ("first", "second"):
        folder = _app(tmp_path / name, name)
        (folder / "main_of_app.py").write_text("from shared_name_module import VALUE as SIBLING\n")
    assert import_from_app(str(tmp_path / "first"), "main_of_app:SIBLING") == "first"
    assert import_from_app(str(tmp_path / "second"), "main_of_app:SIBLING") == "second"
    assert import_from_app(str(tmp_path / "first"), "main_of_app:SIBLING") == "first"


def test_copies_of_one_app_share_the_modules_whose_files_are_the_same(tmp_path: Path) -> None:
    # Defining a model class twice under one module name is refused by registries such as
    # SQLAlchemy's; a copy of the app, byte for byte, keeps the module already loaded.
    for name in ("original", "copy"):
        folder = _app(tmp_path / name, "same")
        (folder / "main_of_app.py").write_text("import shared_name_module as SIBLING\n")
    original = import_from_app(str(tmp_path / "original"), "main_of_app:SIBLING")
    assert import_from_app(str(tmp_path / "copy"), "main_of_app:SIBLING") is original
    (tmp_path / "copy" / "shared_name_module.py").write_text("VALUE = 'edited'\n")
    forget_app_modules(str(tmp_path / "copy"))
    assert import_from_app(str(tmp_path / "copy"), "shared_name_module:VALUE") == "edited"


def test_a_module_imported_some_other_way_is_never_dropped(tmp_path: Path) -> None:
    # The suite's own ``tests`` package is not an app's, even when an app folder has a
    # ``tests`` folder of its own: loading that app must not unload the suite's modules.
    import tests.hosts

    app = _app(tmp_path / "with_tests", "x")
    (app / "tests").mkdir()
    assert import_from_app(str(app), "shared_name_module:VALUE") == "x"
    assert sys.modules["tests.hosts"] is tests.hosts


def test_raydo_packages_load_once_even_when_an_app_folder_holds_them(tmp_path: Path) -> None:
    from raydo.bindings.d1 import D1Error

    # A checkout used as an app's folder (``raydo dev .`` in the repository) contains raydo's
    # own packages; another app importing them must still get the very same classes.
    assert import_from_app(str(REPO), "raydo.bindings.d1:D1Error") is D1Error
    other = _app(tmp_path / "other", "x")
    assert import_from_app(str(other), "raydo.bindings.d1:D1Error") is D1Error


def test_forgetting_an_apps_modules_makes_the_next_import_read_its_files(tmp_path: Path) -> None:
    app = _app(tmp_path / "reloaded", "one")
    (app / "second_module.py").write_text("import shared_name_module\n")
    assert import_from_app(str(app), "shared_name_module:VALUE") == "one"
    assert import_from_app(str(app), "second_module:shared_name_module") is not None
    (app / "shared_name_module.py").write_text("VALUE = 'two, longer'\n")
    assert import_from_app(str(app), "shared_name_module:VALUE") == "one"  # cached
    dropped = forget_app_modules(str(app))
    assert sorted(dropped) == ["second_module", "shared_name_module"]
    assert "pytest" in sys.modules and "raydo.actors" in sys.modules  # nothing else goes
    assert import_from_app(str(app), "shared_name_module:VALUE") == "two, longer"
