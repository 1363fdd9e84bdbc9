"""Config: contract keys, dotted overrides, typed errors."""

from __future__ import annotations

import pytest
from conftest import merged

from adamml.engine.config import TrainConfig, apply_overrides
from adamml.errors import ConfigError


def test_contract_keys_and_overrides() -> None:
    raw = apply_overrides(
        merged(
            loss={"cost_weights": {"rgb": 1.0, "audio": 0.05}, "gamma": 10},
            model_args={"learned": True},
        ),
        ["schedule.joint_epochs=3", "milestones=[1, 2]", "data.val=null", "init={rgb: a.pt}"],
    )
    cfg = TrainConfig.from_dict(raw)
    assert cfg.schedule.joint_epochs == 3 and cfg.optim.milestones == (1, 2)
    assert cfg.data.val is None and cfg.init == {"rgb": "a.pt"} and cfg.optim.lr == 0.05
    assert cfg.loss.cost_weights == {"rgb": 1.0, "audio": 0.05}
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "over, match",
    [
        ({"bogus": 1}, "unknown config key 'bogus'"),
        ({"schedule": {"joint_epoch": 1}}, "schedule.joint_epoch"),
        ({"alternation": "step"}, "alternation"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "optim.lr"),
        ({"model": ""}, "model"),
    ],
)
def test_bad_values_raise_config_error(over, match) -> None:
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict(merged(**over))


def test_override_syntax_error() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["schedule.joint_epochs"])
