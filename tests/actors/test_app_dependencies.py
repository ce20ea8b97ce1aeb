"""What ``raydo deploy`` ships of an app's declared dependencies: requirements.txt read the way
pip reads it, local paths pointed at the node's copy of the folder, carried wheels apart, and a
clear refusal for whatever cannot travel."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from raydo.actors.app_dependencies import (
    NODE_FOLDER,
    AppDependencies,
    DependencyError,
    app_dependencies,
    content_named,
    wheel_modules,
)


def _wheel(path: Path, *members: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for member in (*members, "probe-1.0.dist-info/WHEEL"):
            archive.writestr(member, "")
    return path


def test_no_declaration_is_no_dependency(tmp_path: Path) -> None:
    assert app_dependencies(tmp_path) == AppDependencies()


def test_requirements_lines_as_pip_reads_them(tmp_path: Path) -> None:
    _wheel(tmp_path / "wheels" / "probe-1.0-py3-none-any.whl", "probe/__init__.py")
    (tmp_path / "vendor" / "pkg").mkdir(parents=True)
    (tmp_path / "extra").mkdir()
    # -r is read from the including file's folder, a plain path from pip's working folder
    # (the app's), as pip reads them
    (tmp_path / "extra" / "more.txt").write_text("six==1.16  # pinned\n./vendor/pkg\n")
    (tmp_path / "requirements.txt").write_text(
        "# the app's\n"
        "httpx>=0.27  # a comment after the line\n"
        "\n"
        "./wheels/probe-1.0-py3-none-any.whl\n"
        "-r extra/more.txt\n"
        "--find-links=wheels\n"
        "-e .\n"
        "name @ https://example.invalid/name-1.0.whl\n"
        "--index-url https://example.invalid/simple\n"
        "marker; python_version > '3.10'\n"
    )
    found = app_dependencies(tmp_path)
    assert found.wheels == (tmp_path.resolve() / "wheels" / "probe-1.0-py3-none-any.whl",)
    assert found.pip == (
        "httpx>=0.27",
        "six==1.16",
        f"{NODE_FOLDER}/vendor/pkg",
        f"--find-links {NODE_FOLDER}/wheels",
        f"-e {NODE_FOLDER}",
        "name @ https://example.invalid/name-1.0.whl",
        "--index-url https://example.invalid/simple",
        "marker; python_version > '3.10'",
    )


def test_pyproject_dependencies_when_there_is_no_requirements_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\ndependencies = ["httpx>=0.27", " six "]\n'
    )
    assert app_dependencies(tmp_path) == AppDependencies(pip=("httpx>=0.27", "six"))
    (tmp_path / "requirements.txt").write_text("orjson\n")  # it wins over pyproject.toml
    assert app_dependencies(tmp_path).pip == ("orjson",)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("../outside.whl\n", "line 1: '../outside.whl' is outside the app's folder"),
        ("/etc/hosts\n", "line 1: '/etc/hosts' is outside the app's folder"),
        ("httpx\n./missing.whl\n", "line 2: './missing.whl' does not exist in the app's folder"),
        ("-r loop.txt\n", "requirements files include each other"),
        ("./.venv/x.whl\n", "in '.venv', which raydo deploy leaves out"),
    ],
)
def test_what_cannot_travel_is_refused_naming_its_line(
    tmp_path: Path, text: str, said: str
) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "x.whl").write_bytes(b"")
    (tmp_path / "loop.txt").write_text("-r requirements.txt\n")
    (tmp_path / "requirements.txt").write_text(text)
    with pytest.raises(DependencyError, match=re.escape(said)):
        app_dependencies(tmp_path, left_out=[".venv"])


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[project\n", "cannot be read"),
        ("project = 1\n", r"\[project\] must be a table"),
        ("[project]\ndependencies = 'httpx'\n", "must be a list of strings"),
        ("[project]\ndependencies = [1]\n", "must be a list of strings"),
    ],
)
def test_a_broken_pyproject_is_an_error_naming_it(tmp_path: Path, text: str, said: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(DependencyError, match=said):
        app_dependencies(tmp_path)


def test_a_carried_wheel_is_checked_and_its_modules_known(tmp_path: Path) -> None:
    wheel = _wheel(
        tmp_path / "probe-1.0-py3-none-any.whl",
        "probe/__init__.py",
        "probe/inner.py",
        "single.py",
        "probe-1.0.data/scripts/tool",
    )
    assert wheel_modules(wheel) == ["probe", "single"]
    (tmp_path / "not.whl").write_bytes(b"not a zip archive")
    with pytest.raises(DependencyError, match=r"not\.whl is not a wheel"):
        wheel_modules(tmp_path / "not.whl")
    with zipfile.ZipFile(tmp_path / "bare.whl", "w") as archive:
        archive.writestr("probe/__init__.py", "")
    with pytest.raises(DependencyError, match=r"it has no \.dist-info/WHEEL"):
        wheel_modules(tmp_path / "bare.whl")


def test_a_carried_wheel_is_shipped_under_a_name_that_changes_with_its_bytes(
    tmp_path: Path,
) -> None:
    # Ray knows a wheel in py_modules by its file name only: a rebuilt wheel of the same
    # name and version must not be mistaken for the one the nodes already have.
    wheel = _wheel(tmp_path / "probe-1.0-py3-none-any.whl", "probe/__init__.py")
    into = tmp_path / "staged"
    into.mkdir()
    first = content_named(wheel, into)
    assert first.name.startswith("probe-1.0-0") and first.name.endswith("-py3-none-any.whl")
    assert first.read_bytes() == wheel.read_bytes()
    assert content_named(wheel, into) == first
    _wheel(wheel, "probe/__init__.py", "probe/more.py")  # rebuilt, same name
    assert content_named(wheel, into) != first
    with pytest.raises(DependencyError, match="not a wheel's name"):
        content_named(_wheel(tmp_path / "odd.whl", "odd.py"), into)
