"""``raydo objects`` reports what the objects did, not what the command itself just did."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.gateway.test_objects_cli import app, raydo

__all__ = ["app"]  # the fixture, shared with the main CLI tests


def test_listing_does_not_change_an_objects_last_write(app: Path) -> None:
    first = [
        json.loads(line) for line in raydo(app, "list", "COUNTER", "--json").stdout.splitlines()
    ]
    time.sleep(1.1)  # past the listing's one-second resolution
    again = [
        json.loads(line) for line in raydo(app, "list", "COUNTER", "--json").stdout.splitlines()
    ]
    assert [(r["id"], r["last_write"]) for r in again] == [
        (r["id"], r["last_write"]) for r in first
    ]


def test_an_imported_object_has_the_targets_name_not_the_sources(app: Path) -> None:
    dump = raydo(app, "export", "COUNTER", "b").stdout
    assert raydo(app, "import", "COUNTER", "b-copy", "-", stdin=dump).returncode == 0
    rows = [
        json.loads(line) for line in raydo(app, "list", "COUNTER", "--json").stdout.splitlines()
    ]
    assert sorted(r["name"] for r in rows) == ["..", "a", "b", "b-copy"]
    shown = json.loads(raydo(app, "show", "COUNTER", "b-copy").stdout)
    assert shown["name"] == "b-copy"
