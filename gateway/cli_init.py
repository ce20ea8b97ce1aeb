"""``raydo init DIR [--template counter|chat|tenants|seed-backend|jobs]``: a new app.

The templates are raydo's examples, shipped inside the package (``raydo/examples``). In
order: refuse a ``DIR`` that exists and is not empty (nothing is ever overwritten); copy the
example without its storage or caches; name the app after the folder in its ``raydo.toml``
(two apps of one name would share hosts on one Ray); add ``test_app.py``, a test that runs
the app with :mod:`raydo.gateway.testing`; print the commands to run next.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from .config import CONFIG_NAME

TEMPLATES = ("counter", "chat", "tenants", "seed-backend", "jobs")
DEFAULT_TEMPLATE = "counter"
_SKIPPED = shutil.ignore_patterns(".raydo", "__pycache__", "*.pyc", "*.sqlite*")


class InitError(Exception):
    """The app cannot be made where asked (the message says why)."""


def add_commands(commands: Any) -> None:
    """Add ``raydo init`` to the top-level subparsers."""
    init = commands.add_parser("init", help="make a new app from a template")
    init.set_defaults(handler=run)
    init.add_argument("dir", help="the new app's folder (new, or empty)")
    init.add_argument(
        "--template",
        choices=TEMPLATES,
        default=DEFAULT_TEMPLATE,
        help=f"the example to start from ({DEFAULT_TEMPLATE})",
    )


def templates_root() -> Path:
    """Where the templates are: ``raydo/examples`` in an installed package, the repository's
    ``examples`` in a checkout (``raydo/gateway`` and ``raydo/examples`` link to its folders)."""
    return Path(__file__).resolve().parent.parent / "examples"


def run(args: argparse.Namespace) -> int:
    try:
        folder = make_app(Path(args.dir), args.template)
    except InitError as exc:
        print(f"raydo: error: {exc}", file=sys.stderr)
        return 2
    shown = shlex.quote(args.dir)
    print(f"raydo: made the app {app_name(folder)!r} in {shown} from the {args.template} template")
    print("next:")
    if args.template == "seed-backend":
        print(f"  raydo db migrations apply DB --dir {shown}  # the users table, once")
    print(f"  raydo dev {shown}  # serve it on http://127.0.0.1:8787, reloading on edits")
    print(f"  python -m pytest {shown}  # its test, test_app.py")
    return 0


def make_app(folder: Path, template: str) -> Path:
    """Make the app in ``folder`` from ``template``; the folder. Raises :class:`InitError`."""
    if template not in TEMPLATES:
        raise InitError(f"no template {template!r}: choose one of {', '.join(TEMPLATES)}")
    source = templates_root() / template
    if not (source / CONFIG_NAME).is_file():
        raise InitError(f"the {template} template is missing from {source} (a broken install?)")
    if folder.exists() and not folder.is_dir():
        raise InitError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise InitError(
            f"{folder} is not empty: raydo init never overwrites; name a new or empty folder"
        )
    name = _name_for(folder, template)
    shutil.copytree(source, folder, ignore=_SKIPPED, dirs_exist_ok=True)
    config = folder / CONFIG_NAME
    text = config.read_text()
    config.write_text(re.sub(r'(?m)^name = "[^"]*"', f'name = "{name}"', text, count=1))
    (folder / "test_app.py").write_text(_TEST_HEAD + _TESTS[template])
    return folder


def app_name(folder: Path) -> str:
    found = re.search(r'(?m)^name = "([^"]*)"', (folder / CONFIG_NAME).read_text())
    return found.group(1) if found else "?"


def _name_for(folder: Path, template: str) -> str:
    """The app's name from its folder's: lowercase letters, digits, '-' and '_' (raydo.toml's
    rule), or the template's name when nothing of it is left."""
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-_")[:63]
    return name if name else template


_TEST_HEAD = '''"""The app, served as it runs (real HTTP on 127.0.0.1, objects in this process).

Run with ``python -m pytest``; ``start_app(APP, ray=True)`` runs the same on a local Ray.
"""

from pathlib import Path

import pytest

from raydo.gateway.testing import start_app

APP = Path(__file__).parent
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

'''

_TESTS = {
    "counter": """
async def test_the_counter_counts_and_keeps_its_value() -> None:
    async with start_app(APP) as app:
        assert (await app.http.post("/counter/a/increment")).json()["value"] == 1
        assert (await app.http.post("/counter/a/increment")).json()["value"] == 2
        await app.evict("COUNTER", "a")  # memory goes, the object's SQLite file stays
        assert (await app.http.get("/counter/a")).json()["value"] == 2
""",
    "chat": """
async def test_the_page_and_an_empty_room() -> None:
    async with start_app(APP) as app:
        page = await app.http.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert (await app.http.get("/room/lobby/history")).json() == []
""",
    "tenants": """
async def test_a_tenant_sees_only_its_own_projects() -> None:
    async with start_app(APP) as app:
        made = await app.http.post(
            "/projects", json={"name": "launch"}, headers={"x-tenant-id": "acme"}
        )
        assert made.status_code in (200, 201), made.text
        mine = await app.http.get("/projects", headers={"x-tenant-id": "acme"})
        assert [p["name"] for p in mine.json()] == ["launch"]
        theirs = await app.http.get("/projects", headers={"x-tenant-id": "globex"})
        assert theirs.json() == []
""",
    "seed-backend": """
async def test_a_file_goes_in_and_comes_back() -> None:
    async with start_app(APP) as app:
        put = await app.http.post(
            "/files/notes/hello.txt", content=b"hello", headers={"content-type": "text/plain"}
        )
        assert put.status_code == 201, put.text
        got = await app.http.get("/files/notes/hello.txt")
        assert (got.status_code, got.content) == (200, b"hello")
""",
    "jobs": """
async def test_a_job_is_queued_and_a_bad_one_refused() -> None:
    async with start_app(APP) as app:
        queued = await app.http.post("/jobs", json={"to": "ada@example.com", "subject": "hi"})
        assert queued.status_code == 202, queued.text
        refused = await app.http.post("/jobs", json={"to": "nobody"})
        assert refused.status_code == 400
""",
}
