"""A leased batch's journal: each decision the handler makes, on disk the moment it is made.

``msg.ack()`` and ``msg.retry()`` are plain calls in the middle of a handler, and a handler
may kill its host (a poisoned message, an out-of-memory kill) right after one. So each
decision is appended, as one line written in one system call, to a journal file beside the
queue's database (:func:`raydo.storage.layout.aside_file`, label ``lease-<lease>``) before the
call returns. A write the process made survives the process's death (the kernel holds it),
as a commit at ``durability = "normal"`` does; it does not survive the machine's.

The queue object reads the journal of a batch whose host died (:func:`read_journal`), keeps
those decisions, and redelivers only the undecided messages; a batch that settles normally
removes its journal. A torn last line (the process died in the write) is ignored.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from raydo.storage import layout

log = logging.getLogger("raydo.queues")

LABEL_PREFIX = "lease-"
BATCH = "*"
"""The target of a batch-wide decision (``ack_all``, ``retry_all``) in a journal line."""

Decision = tuple[str, float | None]
"""``("ack", None)`` or ``("retry", delay in seconds or None for the consumer's backoff)``."""


def journal_path(queue_file: Path, lease: str) -> Path:
    """The journal of ``lease`` beside the queue object's file ``queue_file``."""
    return layout.aside_file(queue_file, f"{LABEL_PREFIX}{lease}")


def journal_leases(queue_file: Path) -> dict[str, Path]:
    """Every journal beside ``queue_file``, by lease."""
    return {
        label[len(LABEL_PREFIX) :]: path
        for label, path in layout.aside_files(queue_file, LABEL_PREFIX)
    }


class Journal:
    """The journal one delivery writes (opened on its first decision, closed by the owner)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._broken = False

    def record(self, target: str, decision: Decision) -> None:
        """Append one decision (``target``: a message id or :data:`BATCH`). A journal that
        cannot be written (a full disk) is logged once and given up: the decision still
        holds in memory, and only a host death would redeliver the message."""
        if self._broken:
            return
        line = (json.dumps([target, decision[0], decision[1]]) + "\n").encode()
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(self._fd, line)
        except OSError as exc:
            self._broken = True
            log.warning("cannot journal queue decisions (%s): a crash would redeliver", exc)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


@dataclass
class Journaled:
    """What a journal says: each message's own decision, and the batch's (first ones win)."""

    messages: dict[str, Decision] = field(default_factory=dict)
    batch: Decision | None = None

    def decision(self, message_id: str) -> Decision | None:
        """The message's own decision, else the batch's, else None (undecided)."""
        return self.messages.get(message_id) or self.batch


def read_journal(path: Path) -> Journaled:
    """The decisions in the journal at ``path`` (none when there is no such file)."""
    found = Journaled()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return found
    for line in text.splitlines():
        try:
            target, kind, delay = json.loads(line)
        except (ValueError, TypeError):
            continue  # torn by the death of its writer
        if kind not in ("ack", "retry") or not isinstance(target, str):
            continue
        decision: Decision = (kind, None if delay is None else float(delay))
        if target == BATCH:
            found.batch = found.batch or decision
        else:
            found.messages.setdefault(target, decision)
    return found
