"""The per-binding alarm index under several host processes writing at once (real files)."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from pathlib import Path

from raydo.actors._alarms import AlarmIndex

WRITERS = 3
ROUNDS = 40
ROUND_S = 0.03


def write_alarms(
    folder: str, writer: int, start: Barrier, epoch: Synchronized[float], errors: list[str]
) -> None:
    """One host: in each round, the first alarm it sets goes to a fresh index file that the
    other hosts are creating at the same instant (the shape of a freshly started binding)."""
    if start.wait() == 0:
        epoch.value = time.time() + 0.1
    start.wait()
    for round_ in range(ROUNDS):
        index = AlarmIndex(Path(folder) / f"round-{round_}" / "_alarms.sqlite")
        object_hex = f"{writer:02x}" * 32
        while time.time() < epoch.value + round_ * ROUND_S:
            pass  # a spin, not a sleep: the writers must collide within microseconds
        try:
            index.ahead(f"CLOCK:{writer}", object_hex, f"clock-{writer}", 1_000 + round_)
            index.settle(f"CLOCK:{writer}", object_hex, f"clock-{writer}", 2_000 + round_)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            errors.append(f"round {round_}, writer {writer}: {type(exc).__name__}: {exc}")
        finally:
            index.close()


def test_hosts_creating_the_index_at_once_all_get_their_alarms_in(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        errors = manager.list()
        start = context.Barrier(WRITERS)
        epoch = context.Value("d", 0.0)
        writers = [
            context.Process(target=write_alarms, args=(str(tmp_path), n, start, epoch, errors))
            for n in range(WRITERS)
        ]
        for process in writers:
            process.start()
        for process in writers:
            process.join(120)
        assert [p.exitcode for p in writers] == [0] * WRITERS
        assert list(errors) == []
    for round_ in range(ROUNDS):
        index = AlarmIndex(tmp_path / f"round-{round_}" / "_alarms.sqlite")
        try:
            for writer in range(WRITERS):
                assert index.of_host(f"CLOCK:{writer}") == [
                    (f"{writer:02x}" * 32, f"clock-{writer}", 2_000 + round_)
                ]
        finally:
            index.close()
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".new")]
    assert leftovers == []
