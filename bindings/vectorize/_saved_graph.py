"""A shard's HNSW graph saved beside its file, so that an activation loads it rather than
building it again (at 100,000 vectors a build takes over a minute; a load, the time to read
the file).

Two files beside the shard's SQLite file (:func:`raydo.storage.layout.aside_file`, hidden, so
listings of objects never count them): the graph as usearch saves it
(``.<id>.graph-<n>``), then, written last and renamed into place so it is whole or absent,
``.<id>.graph.json``, which names that graph file and the state of the data it reflects: the
shard's last mutation id (written in the same transaction as every write), its dimensions
and metric, and the id of each row in row order (the graph's keys are rows).

The shard records in its own file, in the event that saved, the mutation the graph was
saved at (``vec_state.graph_saved``), and from then on journals each id written or deleted
(``vec_graph_journal``). It takes the saved graph only when the header's mutation is the
one its file records and every saved row not journaled is found again; it then catches the
graph up with the journaled ids alone. Anything else (a save whose event did not commit, a
point-in-time restore to before the save, another node's copy of the file, a damaged or
truncated graph file) leaves it unused, and the graph is built from the file as before. The
saved graph is a cache: it never decides what the index holds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raydo.actors.placement import load_ray
from raydo.storage import layout

log = logging.getLogger("raydo.vectorize")

FORMAT = 1
HEADER_LABEL = "graph.json"
GRAPH_PREFIX = "graph-"


@dataclass(frozen=True)
class SavedGraph:
    """A graph read back, and the row layout it was saved with."""

    ids: list[str | None]
    graph: Any


def save(final: Path, graph: Any, ids: list[str | None], *, mutation: str, shape: str) -> None:
    """Save ``graph`` (its keys the rows of ``ids``) as the state ``mutation`` of the object
    whose file is ``final``; ``shape`` is ``"<dimensions>/<metric>/<graph dtype>"``.
    Blocking: run it in a thread, while nothing changes the graph."""
    previous = {label for label, _ in layout.aside_files(final, GRAPH_PREFIX)}
    number = 1 + max(
        (int(label[len(GRAPH_PREFIX) :]) for label in previous if _numbered(label)), default=0
    )
    label = f"{GRAPH_PREFIX}{number}"
    graph_file = layout.aside_file(final, label)
    graph.save(str(graph_file))
    header = {
        "format": FORMAT,
        "mutation": mutation,
        "shape": shape,
        "graph": label,
        "size": graph_file.stat().st_size,
        "ids": ids,
    }
    fd, partial = tempfile.mkstemp(dir=final.parent, prefix=f".{final.stem}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(header, out, separators=(",", ":"))
        os.replace(partial, layout.aside_file(final, HEADER_LABEL))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    for old in previous:  # the header no longer names them
        with contextlib.suppress(OSError):
            layout.aside_file(final, old).unlink()


def load(final: Path, *, mutation: str | None, shape: str) -> SavedGraph | None:
    """The graph saved for the state ``mutation`` of the object whose file is ``final``, or
    None when there is none for that state (or it cannot be read: said in the log)."""
    header_file = layout.aside_file(final, HEADER_LABEL)
    if mutation is None or not header_file.exists():
        return None
    try:
        header = json.loads(header_file.read_text())
        if not (
            isinstance(header, dict)
            and header.get("format") == FORMAT
            and header.get("shape") == shape
        ):
            return None
        if header.get("mutation") != mutation:
            return None  # written since: the graph is built from the file
        label, ids = header["graph"], header["ids"]
        if not (isinstance(label, str) and _numbered(label) and isinstance(ids, list)):
            raise ValueError("a malformed header")
        graph_file = layout.aside_file(final, label)
        if graph_file.stat().st_size != header.get("size"):
            raise ValueError(f"{label} is not the size saved")
        load_ray()  # before usearch's own C++ runtime (see load_ray)
        from usearch.index import Index

        graph = Index.restore(str(graph_file))
        if graph is None or len(graph) != sum(1 for i in ids if i is not None):
            raise ValueError(f"{label} does not hold the rows saved")
    except Exception as exc:  # noqa: BLE001 - any damage: built again, and said
        log.warning("the saved graph of %s is not usable (%s); building it again", final, exc)
        return None
    return SavedGraph([i if isinstance(i, str) else None for i in ids], graph)


def _numbered(label: str) -> bool:
    return label.startswith(GRAPH_PREFIX) and label[len(GRAPH_PREFIX) :].isdigit()
