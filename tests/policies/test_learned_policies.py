"""PolicyLSTM, PolicyFC and JointGatePolicy: shapes, gradients, eval determinism, streaming."""

from __future__ import annotations

import math

import pytest
import torch
from policy_helpers import MODALITY_SETS, TinyExtractor, make_views, tiny_backbones
from torch import nn

from adamml.errors import ConfigError, ShapeError
from adamml.policies import GumbelGate, JointGatePolicy, PolicyFC, PolicyLSTM
from adamml.types import PolicyOutput

LEARNED = [PolicyLSTM, PolicyFC, JointGatePolicy]


def build(cls: type, modalities: tuple[str, ...], **kwargs) -> nn.Module:
    sizes = {"joint_dim": 12} if cls is PolicyFC else {"joint_dim": 12, "hidden_size": 10}
    return cls(modalities, backbones=tiny_backbones(modalities), **sizes, **kwargs)


@pytest.mark.parametrize("cls", LEARNED)
@pytest.mark.parametrize("modalities", MODALITY_SETS)
@pytest.mark.parametrize("b,s", [(1, 1), (1, 5), (3, 1), (3, 5)])
def test_shapes(cls, modalities, b, s) -> None:
    policy = build(cls, modalities)
    assert policy.modalities == modalities and policy.needs_views
    for mode in (policy.train, policy.eval):
        mode()
        out = policy(make_views(modalities, b, s))
        assert isinstance(out, PolicyOutput)
        assert out.decisions.shape == (b, s, len(modalities))
        assert out.logits.shape == (b, s, len(modalities), 2)
        assert set(out.decisions.detach().unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("cls", LEARNED)
@pytest.mark.parametrize("modalities", MODALITY_SETS)
def test_every_parameter_gets_a_gradient_through_the_gate(cls, modalities) -> None:
    policy = build(cls, modalities).train()
    out = policy(make_views(modalities, 3, 5))
    weights = torch.rand_like(out.decisions)
    (out.decisions * weights).sum().backward()
    for name, param in policy.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls", LEARNED)
def test_eval_is_deterministic_and_sample_at_eval_is_not(cls) -> None:
    mods = ("rgb", "audio")
    views = make_views(mods, 40, 5)
    policy = build(cls, mods).eval()
    with torch.no_grad():
        assert torch.equal(policy(views).decisions, policy(views).decisions)
        policy.gate.sample_at_eval = True
        assert not torch.equal(policy(views).decisions, policy(views).decisions)


def test_lstm_eval_decisions_are_argmax_of_logits() -> None:
    mods = ("rgb", "audio", "flow")
    policy = build(PolicyLSTM, mods).eval()
    out = policy(make_views(mods, 3, 5))
    assert torch.equal(out.decisions, out.logits.argmax(-1).float())


@pytest.mark.parametrize("cls", [PolicyLSTM, JointGatePolicy])
@pytest.mark.parametrize("feed_logits", [True, False])
def test_streaming_step_equals_forward(cls, feed_logits) -> None:
    mods = ("rgb", "audio", "flow")
    views = make_views(mods, 3, 5)
    policy = build(cls, mods, feed_logits=feed_logits).eval()
    with torch.no_grad():
        full = policy(views)
        state, decisions, logits = None, [], []
        for t in range(5):
            d, z, state = policy.step({m: v[:, t] for m, v in views.items()}, state)
            decisions.append(d)
            logits.append(z)
    assert torch.equal(torch.stack(decisions, 1), full.decisions)
    torch.testing.assert_close(torch.stack(logits, 1), full.logits)


def test_streaming_matches_forward_in_training_with_a_generator() -> None:
    mods = ("rgb", "audio")
    views = make_views(mods, 4, 5)
    policy = build(PolicyLSTM, mods).train()
    full = policy(views, generator=torch.Generator().manual_seed(7))
    feats = policy.features(views)
    gen, state, decisions = torch.Generator().manual_seed(7), policy.init_state(4), []
    for t in range(5):
        d, _, state = policy.step(feats[:, t], state, generator=gen)
        decisions.append(d)
    assert torch.equal(torch.stack(decisions, 1), full.decisions)


def test_lstm_structure_follows_the_reference() -> None:
    mods = ("rgb", "audio")
    policy = build(PolicyLSTM, mods)
    assert policy.lstm.input_size == 12 + 2 * 2 and policy.lstm.hidden_size == 10
    assert [h.out_features for h in policy.heads] == [2, 2]
    assert [type(m) for m in policy.joint] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU]
    assert set(policy.backbones) == set(mods)
    assert "gate.tau" in policy.state_dict()
    assert build(PolicyLSTM, mods, feed_logits=False).lstm.input_size == 12


def test_lstm_feeds_previous_raw_logits() -> None:
    """The second step's LSTM input is [f_1, z_0 flattened (m1: l0, l1, m2: l0, l1)]."""
    mods = ("rgb", "audio")
    policy = build(PolicyLSTM, mods).eval()
    views = make_views(mods, 2, 2)
    seen = []
    policy.lstm.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    out = policy(views)
    feats = policy.features(views)
    torch.testing.assert_close(seen[0], torch.cat([feats[:, 0], torch.zeros(2, 4)], -1))
    torch.testing.assert_close(
        seen[1], torch.cat([feats[:, 1], out.logits[:, 0].reshape(2, 4)], -1)
    )


def test_joint_gate_decodes_combination_bits_and_marginals() -> None:
    mods = ("rgb", "audio")
    policy = build(JointGatePolicy, mods).eval()
    assert policy.head.out_features == 4 and policy.lstm.input_size == 12 + 4
    nn.init.zeros_(policy.head.weight)
    views = make_views(mods, 2, 3)
    expected_bits = {0: [0.0, 0.0], 1: [1.0, 0.0], 2: [0.0, 1.0], 3: [1.0, 1.0]}
    with torch.no_grad():
        for index, bits in expected_bits.items():
            policy.head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(index), 4) * 10.0)
            assert policy(views).decisions.tolist() == [[bits] * 3] * 2
        # P(combination) = (1, 2, 3, 4) / 10: P(use rgb) = p1 + p3 = 0.6, P(use audio) = 0.7
        policy.head.bias.copy_(torch.log(torch.tensor([1.0, 2.0, 3.0, 4.0])))
        marginal = policy(views).logits.exp()
    torch.testing.assert_close(marginal, torch.tensor([[0.4, 0.6], [0.3, 0.7]]).expand(2, 3, 2, 2))


def test_fc_segments_are_independent() -> None:
    mods = ("rgb", "flow")
    policy = build(PolicyFC, mods).eval()
    views = make_views(mods, 2, 4)
    full = policy(views)
    alone = policy({m: v[:, 2:3] for m, v in views.items()})
    torch.testing.assert_close(alone.logits[:, 0], full.logits[:, 2])


def test_accepts_five_dim_audio_and_the_sound_alias() -> None:
    mods = ("rgb", "audio")
    policy = build(PolicyLSTM, mods).eval()
    views = make_views(mods, 2, 3)
    ref = policy(views).logits
    alias = {"rgb": views["rgb"], "sound": views["audio"][:, :, 0]}
    torch.testing.assert_close(policy(alias).logits, ref)
    assert PolicyLSTM(
        ("rgb", "sound"), backbones=tiny_backbones(("rgb", "audio")), joint_dim=4, hidden_size=4
    ).modalities == ("rgb", "audio")


@pytest.mark.parametrize("cls", LEARNED)
def test_missing_or_inconsistent_views(cls) -> None:
    mods = ("rgb", "audio")
    policy = build(cls, mods)
    views = make_views(mods, 2, 3)
    with pytest.raises(ShapeError, match="'audio'.*\\['rgb'\\]"):
        policy({"rgb": views["rgb"]})
    bad = dict(views, audio=torch.randn(2, 4, 1, 1, 8, 8))
    with pytest.raises(
        ShapeError, match=r"'rgb' has shape \(2, 3, 2, 3, 6, 6\).*'audio' has shape \(2, 4"
    ):
        policy(bad)
    with pytest.raises(ShapeError, match="'rgb'"):
        policy(dict(views, rgb=torch.randn(2, 3, 6, 6)))


def test_bad_extractor_output_and_configuration() -> None:
    class Wrong(TinyExtractor):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x)[:, :2]

    policy = PolicyLSTM(("rgb",), backbones={"rgb": Wrong(3)}, joint_dim=4, hidden_size=4)
    with pytest.raises(ShapeError, match="'rgb' policy extractor must return"):
        policy(make_views(("rgb",), 2, 2))
    with pytest.raises(ConfigError, match=r"no extractor for \['audio'\]"):
        PolicyLSTM(("rgb", "audio"), backbones={"rgb": TinyExtractor(3)})
    with pytest.raises(ConfigError, match="num_features"):
        PolicyFC(("rgb",), backbones={"rgb": nn.Linear(2, 2)})
    with pytest.raises(ConfigError, match="distinct"):
        PolicyFC(("rgb", "rgb"), backbones={"rgb": TinyExtractor(3)})
    with pytest.raises(ConfigError, match="GumbelGate"):
        PolicyLSTM(("rgb",), backbones={"rgb": TinyExtractor(3)}, gate=nn.Identity())
    with pytest.raises(ShapeError, match="one segment"):
        build(PolicyLSTM, ("rgb",)).step(make_views(("rgb",), 2, 3))


def test_custom_gate_and_temperature_reach_the_policy() -> None:
    gate = GumbelGate(tau=0.5)
    policy = build(PolicyLSTM, ("rgb", "audio"), gate=gate)
    assert policy.gate is gate and math.isclose(policy.state_dict()["gate.tau"].item(), 0.5)


def test_default_extractors_come_from_create_backbone(monkeypatch) -> None:
    import sys
    import types

    calls = []

    def fake_create_backbone(name, *, modality, num_classes=0, **kwargs):
        calls.append((name, modality, num_classes))
        return TinyExtractor({"rgb": 3, "audio": 1}[modality])

    fake = types.ModuleType("adamml.backbones")
    fake.create_backbone = fake_create_backbone
    monkeypatch.setitem(sys.modules, "adamml.backbones", fake)
    PolicyLSTM(("rgb", "audio"), joint_dim=4, hidden_size=4)
    PolicyFC(("rgb",), backbones={"rgb": "my_extractor"}, joint_dim=4)
    assert calls == [
        ("mobilenetv2_policy", "rgb", 0),
        ("mobilenetv2_audio_policy", "audio", 0),
        ("my_extractor", "rgb", 0),
    ]
