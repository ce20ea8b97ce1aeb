"""An object's life in its host: the steps its table allows, and the ones it refuses."""

from __future__ import annotations

import itertools

import pytest

from raydo.actors._slot import IllegalTransition, ObjectLife

ALLOWED = {
    (ObjectLife.INACTIVE, ObjectLife.ACTIVATING),
    (ObjectLife.INACTIVE, ObjectLife.EVICTED),
    (ObjectLife.ACTIVATING, ObjectLife.ACTIVE),
    (ObjectLife.ACTIVATING, ObjectLife.INACTIVE),  # the constructor raised
    (ObjectLife.ACTIVE, ObjectLife.INACTIVE),  # reset
    (ObjectLife.ACTIVE, ObjectLife.EVICTED),
}


@pytest.mark.parametrize(("start", "target"), sorted(ALLOWED, key=str))
def test_allowed_steps_arrive(start: ObjectLife, target: ObjectLife) -> None:
    assert start.to(target) is target


@pytest.mark.parametrize(
    ("start", "target"),
    [pair for pair in itertools.product(ObjectLife, repeat=2) if pair not in ALLOWED],
)
def test_every_other_step_raises(start: ObjectLife, target: ObjectLife) -> None:
    with pytest.raises(IllegalTransition, match=f"from {start.value} to {target.value}"):
        start.to(target)


def test_an_evicted_object_goes_nowhere() -> None:
    for target in ObjectLife:
        with pytest.raises(IllegalTransition):
            ObjectLife.EVICTED.to(target)
