"""create_policy, list_policies, the registry and the top-level exports."""

from __future__ import annotations

import pytest
import torch
from policy_helpers import make_views, tiny_backbones

import adamml
from adamml.errors import ConfigError, UnknownPolicyError
from adamml.policies import (
    AllPolicy,
    JointGatePolicy,
    PolicyFC,
    PolicyLSTM,
    RandomPolicy,
    create_policy,
    list_policies,
)


def test_list_and_registry() -> None:
    assert {"lstm", "fc", "joint_gate", "random", "all"} <= set(list_policies())
    assert list_policies("joint*") == ["joint_gate"]
    assert adamml.POLICIES.get("single_fc") is JointGatePolicy


@pytest.mark.parametrize(
    "name,cls", [("lstm", PolicyLSTM), ("fc", PolicyFC), ("joint_gate", JointGatePolicy)]
)
def test_create_learned(name, cls) -> None:
    mods = ("rgb", "audio")
    policy = create_policy(name, modalities=mods, backbones=tiny_backbones(mods), joint_dim=8)
    assert type(policy) is cls
    assert policy(make_views(mods, 2, 3)).decisions.shape == (2, 3, 2)


def test_create_fixed_and_passthrough() -> None:
    assert type(create_policy("all", modalities=("rgb",))) is AllPolicy
    policy = create_policy("random", modalities=("rgb", "audio"), p=0.3, when="test")
    assert isinstance(policy, RandomPolicy) and policy.p == (0.3, 0.3)
    assert create_policy(policy) is policy


def test_create_errors() -> None:
    with pytest.raises(UnknownPolicyError, match="did you mean 'lstm'"):
        create_policy("lstn", modalities=("rgb",))
    with pytest.raises(ConfigError, match=r"does not take \['hiden_size'\]"):
        create_policy("lstm", modalities=("rgb",), hiden_size=3)
    with pytest.raises(ConfigError, match="modalities"):
        create_policy("all")


def test_top_level_exports() -> None:
    for name in [
        "GumbelGate",
        "TemperatureSchedule",
        "PolicyLSTM",
        "PolicyFC",
        "JointGatePolicy",
        "RandomPolicy",
        "AllPolicy",
        "create_policy",
        "list_policies",
    ]:
        assert getattr(adamml, name) is getattr(adamml.policies, name)


def test_device_follows_inputs() -> None:
    out = AllPolicy(("rgb",))({"rgb": torch.zeros(1, 2, 1, device="meta")})
    assert out.decisions.device.type == "meta"
