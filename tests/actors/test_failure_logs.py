"""Every exception that fails an event is logged once, with its traceback and the object it
failed, in the text and the JSON log formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from raydo.actors import ObjectError, RemoteLimitExceeded, _logs
from raydo.storage.limits import Limits
from tests.actors.sample_objects import Fragile

from ._support import Place, binding


@dataclass
class Captured:
    """What the ``raydo.events`` logger wrote, as text lines and as JSON lines."""

    text: io.StringIO
    json: io.StringIO

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.json.getvalue().splitlines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Two handlers on ``raydo.events`` shaped as ``configure("text")`` and
    ``configure("json")`` shape them (the object context filter, then the format)."""
    text, lines = io.StringIO(), io.StringIO()
    handlers = []
    for out, formatter in (
        (text, logging.Formatter("%(levelname)s %(name)s%(object_context)s: %(message)s")),
        (lines, _logs.JsonLines()),
    ):
        handler = logging.StreamHandler(out)
        handler.addFilter(_logs.ObjectContext())
        handler.setFormatter(formatter)
        handlers.append(handler)
    logger = logging.getLogger("raydo.events")
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield Captured(text, lines)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)


async def test_a_raising_method_is_logged_once_with_traceback_binding_id_and_name(
    place: Place, captured: Captured
) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("failing")
    with pytest.raises(ObjectError, match="boom while writing k"):
        await stub.fail_after_write("k")
    assert await stub.get() == 0  # a later event that succeeds logs nothing here
    hex_id = stub.id.hex

    (record,) = captured.records()
    assert record["level"] == "ERROR"
    assert record["logger"] == "raydo.events"
    assert (record["binding"], record["object_id"], record["object_name"]) == (
        "COUNTER",
        hex_id,
        "failing",
    )
    assert record["event"] == "rpc fail_after_write"
    assert record["error"] == "ValueError"
    assert "boom while writing k" in str(record["message"])
    exception = str(record["exception"])
    assert "Traceback" in exception and "in fail_after_write" in exception

    text = captured.text.getvalue()
    assert text.count("Traceback") == 1
    first = text.splitlines()[0]
    assert first.startswith("ERROR raydo.events")
    for said in ("COUNTER", hex_id, "'failing'", "rpc fail_after_write", "ValueError"):
        assert said in first
    assert 'raise ValueError(f"boom while writing {key}")' in text


async def test_a_failing_constructor_is_logged_with_its_own_traceback(
    place: Place, captured: Captured
) -> None:
    Fragile.fail = True
    placement = place(binding("FRAGILE", "Fragile"))
    with pytest.raises(ObjectError, match="cannot start"):
        await placement.env.FRAGILE.get_by_name("f").ping()
    (record,) = captured.records()
    assert record["error"] == "RuntimeError" and record["object_name"] == "f"
    assert "in __init__" in str(record["exception"])
    assert "cannot start: the config is missing" in str(record["exception"])


async def test_a_limit_breached_is_a_warning_and_refusals_before_running_are_not_failures(
    place: Place, captured: Captured
) -> None:
    placement = place(binding("COUNTER", "Counter"), limits=Limits(value_bytes=1000))
    stub = placement.env.COUNTER.get_by_name("big")
    with pytest.raises(RemoteLimitExceeded):
        await stub.put("k", "x" * 2000)
    with pytest.raises(Exception, match="_private"):
        await stub._private()  # refused before any code ran: nothing failed
    (record,) = captured.records()
    assert record["level"] == "WARNING" and record["error"] == "LimitExceeded"
    assert record["object_id"] == stub.id.hex
