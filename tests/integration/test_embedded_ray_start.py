"""An embedded Ray that does not come up is started again (actors/_ray.py): on a loaded
machine Ray's raylet gives up on its own agents after a fixed 30 s, and ``raydo dev`` would
otherwise exit at its start. Run in a process of its own, since this one's Ray is the
session's."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.cluster import quiet_env

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import logging, ray
    from raydo.actors import _ray

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    real_init, calls = ray.init, []

    def failing_once(**kwargs):
        calls.append(kwargs["address"])
        if len(calls) == 1:
            real_init(**kwargs)  # a real start whose node "never registered"
            raise Exception(
                "The current node timed out during startup. This could happen because"
                " some of the raylet failed to startup or the GCS has become overloaded."
            )
        return real_init(**kwargs)

    ray.init = failing_once
    _ray.start_local_ray(num_cpus=1)
    assert ray.is_initialized() and len(calls) == 2, calls
    assert ray.get(ray.put(41)) + 1 == 42
    ray.shutdown()
    print("started on try", len(calls))
    """
)

BAD_SCRIPT = textwrap.dedent(
    """
    import ray
    from raydo.actors import _ray

    def refusing(**kwargs):
        raise ValueError("no such option")

    ray.init = refusing
    try:
        _ray.start_local_ray()
    except ValueError as exc:
        print("refused:", exc)
    """
)


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        env=quiet_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_a_node_that_never_registered_is_started_again() -> None:
    done = run(SCRIPT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "started on try 2" in done.stdout
    assert "the embedded Ray did not start" in done.stderr
    assert "starting it again (2 of 3)" in done.stderr


def test_other_start_errors_are_not_retried() -> None:
    done = run(BAD_SCRIPT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "refused: no such option"
    assert "starting it again" not in done.stderr
