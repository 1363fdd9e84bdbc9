"""TemperatureSchedule: the reference's 5 * 0.965**epoch, the floor, state and apply."""

from __future__ import annotations

import pytest
from torch import nn

from adamml.errors import ConfigError
from adamml.policies import GumbelGate, TemperatureSchedule


def test_reference_schedule_after_20_epochs() -> None:
    sched = TemperatureSchedule()
    assert sched.value == 5.0
    values = [sched.step() for _ in range(20)]
    assert values[0] == pytest.approx(4.825)
    assert sched.value == pytest.approx(2.452, abs=5e-4)
    assert sched.value == pytest.approx(5 * 0.965**20)


def test_floor() -> None:
    sched = TemperatureSchedule(start=1.0, decay=0.5, min_tau=0.3)
    assert [sched.step() for _ in range(3)] == [0.5, 0.3, 0.3]


def test_state_round_trip() -> None:
    sched = TemperatureSchedule(start=4.0, decay=0.9, min_tau=0.1)
    for _ in range(7):
        sched.step()
    other = TemperatureSchedule()
    other.load_state_dict(sched.state_dict())
    assert (other.value, other.steps, other.min_tau) == (sched.value, 7, 0.1)
    with pytest.raises(ConfigError, match="steps"):
        other.load_state_dict({"start": 1.0})


def test_apply_sets_every_gate() -> None:
    sched = TemperatureSchedule(start=3.0)
    sched.step()
    module = nn.ModuleDict({"a": GumbelGate(), "b": nn.Sequential(nn.Linear(2, 2), GumbelGate())})
    assert sched.apply(module) == 2
    assert all(
        g.temperature == pytest.approx(3.0 * 0.965)
        for g in module.modules()
        if isinstance(g, GumbelGate)
    )
    assert sched.apply(nn.Linear(2, 2)) == 0


@pytest.mark.parametrize(
    "kwargs", [{"start": 0.0}, {"decay": 0.0}, {"decay": 1.5}, {"min_tau": -1.0}]
)
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        TemperatureSchedule(**kwargs)
