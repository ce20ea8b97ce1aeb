"""An older revision of raydo beside the working tree, for benchmarks that time the bindings
in process (``bench/d1.py --old REV``, ``bench/kv.py --in-process --old REV``).

The revision's files are exported with ``git archive`` into a temporary folder (the packages'
symlinks kept), and the benchmark runs its own measuring function again in a child process
with ``PYTHONPATH`` on that folder, so the child imports the old raydo and nothing of the
working tree; the child prints its rates as one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def exported(rev: str) -> Iterator[Path]:
    """The files of revision ``rev`` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"raydo-{rev[:12]}-") as folder:
        archive = Path(folder) / "tree.tar"
        with archive.open("wb") as out:
            subprocess.run(["git", "-C", str(REPO), "archive", rev], stdout=out, check=True)
        root = Path(folder) / "tree"
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="tar")
        yield root


def run_child(tree: Path, script: Path, args: list[str]) -> dict[str, Any]:
    """Run ``script args`` with raydo imported from ``tree``; the JSON object it printed last."""
    env = dict(os.environ, PYTHONPATH=str(tree), RAY_USAGE_STATS_ENABLED="0")
    done = subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} on {tree} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
