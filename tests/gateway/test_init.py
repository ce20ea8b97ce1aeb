"""``raydo init``: a new app from each template, ready for ``raydo dev`` and with a test of
its own that passes; never over anything that exists; the templates ship in the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from raydo.gateway.cli_init import TEMPLATES
from tests.cluster import RAYDO, REPO, dev, quiet_env


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAYDO, *args], capture_output=True, text=True, timeout=120, env=quiet_env(), cwd=cwd
    )


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_makes_an_app_whose_own_test_passes(tmp_path: Path, template: str) -> None:
    folder = tmp_path / "My New App"
    made = run("init", str(folder), "--template", template)
    assert made.returncode == 0, made.stderr
    assert f"raydo dev '{folder}'" in made.stdout  # the next command, quoted for the shell
    assert 'name = "my-new-app"' in (folder / "raydo.toml").read_text()
    assert (folder / "test_app.py").is_file()
    assert not (folder / ".raydo").exists() and not list(folder.rglob("__pycache__"))
    if template == "seed-backend":
        assert "raydo db migrations apply DB --dir" in made.stdout
    # Its own test (raydo.gateway.testing), run as its author would.
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=quiet_env(),
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout


def test_the_new_app_answers_under_raydo_dev(tmp_path: Path) -> None:
    folder = tmp_path / "hello"
    assert run("init", str(folder)).returncode == 0  # the counter, by default
    server = dev(folder, tmp_path, args=["--in-process"]).start()
    try:
        reply = httpx.post(server.url + "/counter/a/increment", timeout=30)
        assert reply.json() == {"name": "a", "value": 1}
    finally:
        server.stop()


def test_init_never_overwrites(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.py").write_text("KEEP = 1\n")
    refused = run("init", str(full), "--template", "chat")
    assert refused.returncode == 2
    assert "is not empty" in refused.stderr and "never overwrites" in refused.stderr
    assert [p.name for p in full.iterdir()] == ["mine.py"]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    refused = run("init", str(a_file))
    assert refused.returncode == 2 and "is not a folder" in refused.stderr
    assert run("init", str(tmp_path / "empty-is-fine")).returncode == 0
    (tmp_path / "empty").mkdir()
    assert run("init", str(tmp_path / "empty")).returncode == 0


def test_an_unknown_template_is_refused_with_the_choices(tmp_path: Path) -> None:
    refused = run("init", str(tmp_path / "x"), "--template", "blog")
    assert refused.returncode == 2
    assert "invalid choice: 'blog'" in refused.stderr and "seed-backend" in refused.stderr
    assert not (tmp_path / "x").exists()


def test_a_built_package_carries_the_templates_without_their_storage(tmp_path: Path) -> None:
    """setuptools' build_py lays out what a wheel holds: the examples under raydo/examples."""
    source = tmp_path / "src"
    shutil.copytree(
        REPO,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", ".raydo", "tests", "bench"),
    )
    # What a developer's checkout may hold beside the examples must stay out of the package.
    (source / "examples" / "counter" / ".raydo").mkdir()
    (source / "examples" / "counter" / ".raydo" / "x.sqlite").write_bytes(b"")
    built = tmp_path / "lib"
    build = ["-q", "build_py", "--build-lib", str(built)]
    done = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", *build],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    package = built / "raydo"
    shipped = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    # The Workers SDK's top-level packages ship beside raydo, typed.
    assert all((built / name / "py.typed").is_file() for name in ("workers", "asgi", "wsgi", "js"))
    wanted = {
        f"examples/{p.relative_to(REPO / 'examples').as_posix()}"
        for p in (REPO / "examples").rglob("*")
        if p.is_file() and ".raydo" not in p.parts and "__pycache__" not in p.parts
    }
    assert wanted and wanted <= shipped, sorted(wanted - shipped)
    assert not [p for p in shipped if ".raydo" in p or p.endswith(".sqlite")]
