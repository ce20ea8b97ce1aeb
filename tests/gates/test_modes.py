"""Which mode a binding's objects run in: the ``concurrency`` key, the class attribute, the
config winning, strict by default, and a clear error for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from raydo.actors import BindingSpec
from raydo.actors._host import Host
from raydo.actors._spec import HostKey
from raydo.gateway.config import ConfigError, load_config
from tests.actors._support import make_spec
from tests.gates.app.objects import GatedRoom

GATED_CLASS = "tests.gates.app.objects:GatedRoom"
PLAIN_CLASS = "tests.gates.app.objects:Room"


def host(tmp_path: Path, cls: str, concurrency: str | None) -> Host:
    binding = BindingSpec("ROOM", cls, concurrency=concurrency)
    return Host(make_spec(tmp_path, binding), HostKey("ROOM", shard=0), None)


@pytest.mark.parametrize(
    ("cls", "configured", "gated"),
    [
        (PLAIN_CLASS, None, False),  # the default stays strict
        (PLAIN_CLASS, "gates", True),
        (GATED_CLASS, None, True),  # the class's attribute
        (GATED_CLASS, "strict", False),  # the config wins
    ],
)
def test_the_config_wins_over_the_class_and_strict_is_the_default(
    tmp_path: Path, cls: str, configured: str | None, gated: bool
) -> None:
    assert host(tmp_path, cls, configured).gated is gated


def test_a_class_attribute_that_is_no_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"Loose\.concurrency is 'loose': it must be"):
        host(tmp_path, "tests.gates.modes_objects:Loose", None)


def test_the_config_key_takes_only_the_two_modes(tmp_path: Path) -> None:
    toml = tmp_path / "raydo.toml"
    head = 'name = "app"\nmain = "app:app"\n[[durable_objects.bindings]]\n'
    head += 'name = "ROOM"\nclass_name = "room:Room"\n'
    toml.write_text(head + 'concurrency = "gates"\n')
    assert load_config(toml).durable_objects[0].concurrency == "gates"
    toml.write_text(head)
    assert load_config(toml).durable_objects[0].concurrency is None  # left to the class
    toml.write_text(head + 'concurrency = "loose"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(toml)
    assert refused.value.key == "durable_objects.bindings[0].concurrency"
    assert "'strict', 'gates'" in str(refused.value)


def test_a_reload_that_changes_the_mode_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gated = host(tmp_path, GATED_CLASS, None)
    assert gated.reload_code() == 0  # the same mode: taken
    monkeypatch.setattr(GatedRoom, "concurrency", "strict")
    with pytest.raises(TypeError, match="changed its concurrency mode: restart to take it"):
        gated.reload_code()
    assert gated.gated
