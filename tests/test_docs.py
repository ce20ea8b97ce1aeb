"""The README documents every command, option, config key and limit (a test fails when not)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from gateway import config
from gateway.cli import parser
from storage.limits import Limits

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("raydo has no subcommands")


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_command_and_option_is_in_the_readme(command: str) -> None:
    assert f"raydo {command}" in README
    for action in _subcommands()[command]._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert flag in README, f"raydo {command} {flag} is not in the README"


@pytest.mark.parametrize(
    "fields",
    [config._TOP_FIELDS, config._OBJECT_BINDING_FIELDS],
    ids=["top level", "durable_objects.bindings"],
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
    assert commands == ["scripts/setup && .venv/bin/raydo dev examples/counter", "scripts/test"]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "\nscripts/test\n" in ci
