"""The README documents every command, option, config key and limit (a test fails when not)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from raydo.gateway import config
from raydo.gateway.cli import parser
from raydo.storage.limits import Limits

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _commands(
    prefix: str, top: argparse.ArgumentParser
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command line, nested ones included (``raydo objects sql``...)."""
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _commands(f"{prefix} {name}", sub)


@pytest.mark.parametrize("command", [name for name, _ in _commands("raydo", parser())])
def test_every_command_and_option_is_in_the_readme(command: str) -> None:
    assert command in README, f"{command} is not in the README"
    sub = dict(_commands("raydo", parser()))[command]
    for action in sub._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert flag in README, f"{command} {flag} is not in the README"


@pytest.mark.parametrize(
    "fields",
    [
        config._TOP_FIELDS,
        config._OBJECT_BINDING_FIELDS,
        config._D1_FIELDS,
        config._R2_FIELDS,
        config._KV_FIELDS,
        config._PRODUCER_FIELDS,
        config._CONSUMER_FIELDS,
        config._REPLICATION_FIELDS,
        config._VECTORIZE_FIELDS,
        config._TRIGGERS_FIELDS,
        config._ASSETS_FIELDS,
        config._AI_FIELDS,
        config._AI_TEXT_FIELDS,
    ],
    ids=[
        "top level",
        "durable_objects.bindings",
        "d1_databases",
        "r2_buckets",
        "kv_namespaces",
        "queues.producers",
        "queues.consumers",
        "replication",
        "vectorize",
        "triggers",
        "assets",
        "ai",
        "ai.text",
    ],
)
def test_every_config_key_is_in_the_readme(fields: dict[str, object]) -> None:
    for key in fields:
        assert re.search(rf"`(\[+)?{re.escape(key)}", README), (
            f"config key {key} is not in the README"
        )


def test_every_limit_is_in_the_readme() -> None:
    for name in Limits.names():
        assert f"`{name}`" in README, f"limit {name} is not in the README"


def test_the_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    block = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["scripts/setup && .venv/bin/raydo dev examples/chat", "scripts/test"]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "\nscripts/test\n" in ci
