"""Decision thresholds of the learned policies: the rule, monotonicity, state dict, errors."""

from __future__ import annotations

import io
import math

import pytest
import torch
from policy_helpers import make_views, tiny_backbones
from torch import nn

from adamml.errors import ConfigError
from adamml.policies import JointGatePolicy, PolicyFC, PolicyLSTM
from adamml.policies.joint_gate import combination_bits

MODS = ("rgb", "audio")


def build(cls: type, modalities: tuple[str, ...] = MODS) -> nn.Module:
    sizes = {"joint_dim": 12} if cls is PolicyFC else {"joint_dim": 12, "hidden_size": 10}
    # init_use=None: margins on both sides of 0, so every threshold moves some decisions
    return cls(modalities, backbones=tiny_backbones(modalities), init_use=None, **sizes).eval()


@pytest.mark.parametrize("cls", [PolicyLSTM, PolicyFC])
def test_use_iff_margin_above_threshold(cls) -> None:
    policy = build(cls)
    views = make_views(MODS, 4, 6)
    with torch.no_grad():
        base = policy(views)
        margins = base.logits[..., 1] - base.logits[..., 0]
        t = torch.tensor([0.01, -0.02])
        policy.set_thresholds(t)
        out = policy(views)
    # the returned (and, for the LSTM, fed-back) logits are the raw ones: a threshold moves no
    # later margin, so one pass of margins predicts the decisions at any threshold exactly
    torch.testing.assert_close(out.logits, base.logits)
    assert torch.equal(out.decisions, (margins > t).float())


@pytest.mark.parametrize("cls", [PolicyLSTM, PolicyFC, JointGatePolicy])
def test_thresholds_shift_decisions_monotonically(cls) -> None:
    policy = build(cls)
    views = make_views(MODS, 5, 6)
    previous = None
    counts = []
    for t in torch.linspace(-3.0, 3.0, 13):
        policy.set_thresholds({"rgb": float(t)})
        with torch.no_grad():
            rgb = policy(views).decisions[..., 0]
        if previous is not None:
            assert bool((rgb <= previous).all()), f"a decision turned on as t rose to {t}"
        previous = rgb
        counts.append(int(rgb.sum()))
    assert counts[0] > counts[-1]
    policy.set_thresholds([math.inf, -math.inf])
    with torch.no_grad():
        decisions = policy(views).decisions
    assert decisions[..., 0].sum() == 0 and bool((decisions[..., 1] == 1).all())


def test_joint_gate_pays_the_thresholds_of_what_it_uses() -> None:
    policy = build(JointGatePolicy)
    t = torch.tensor([0.3, -0.1])
    policy.set_thresholds(t)
    raw = torch.randn(7, 4)
    decisions, _ = policy._gate_step(raw, None)
    bits = combination_bits(2)
    expected = bits[(raw - bits @ t).argmax(-1)]
    assert torch.equal(decisions, expected)


def test_sampling_sees_the_shift() -> None:
    policy = build(PolicyLSTM).train()
    views = make_views(MODS, 3, 4)
    policy.set_thresholds({"rgb": 60.0, "audio": -60.0})
    decisions = policy(views).decisions
    assert decisions[..., 0].sum() == 0 and bool((decisions[..., 1] == 1).all())


def test_thresholds_are_saved_and_reloaded() -> None:
    policy = build(PolicyLSTM)
    policy.set_thresholds({"sound": 0.25})  # an alias
    assert policy.threshold_dict() == {"rgb": 0.0, "audio": 0.25}
    buffer = io.BytesIO()
    torch.save(policy.state_dict(), buffer)
    other = build(PolicyLSTM)
    other.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert other.threshold_dict() == {"rgb": 0.0, "audio": 0.25}
    # a state dict from before the thresholds existed loads strictly, as t = 0
    old = {k: v for k, v in policy.state_dict().items() if k != "thresholds"}
    other.load_state_dict(old)
    assert other.threshold_dict() == {"rgb": 0.0, "audio": 0.0}


def test_bad_thresholds_are_named() -> None:
    policy = build(PolicyFC)
    with pytest.raises(ConfigError, match="flow"):
        policy.set_thresholds({"flow": 1.0})
    with pytest.raises(ConfigError, match="3 thresholds for 2"):
        policy.set_thresholds([1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="NaN"):
        policy.set_thresholds({"rgb": float("nan")})
    assert policy.threshold_dict() == {"rgb": 0.0, "audio": 0.0}
