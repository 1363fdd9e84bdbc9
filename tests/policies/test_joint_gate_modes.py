"""JointGatePolicy's paper mode (AdaMML Sec. 4.3 "Policy Design"): one binary decision per
segment, every modality used or none."""

from __future__ import annotations

import pytest
import torch
from policy_helpers import MODALITY_SETS, make_views, tiny_backbones

import adamml
from adamml.errors import ConfigError
from adamml.policies import JointGatePolicy
from adamml.policies.joint_gate import all_or_nothing_bits


def paper_gate(modalities: tuple[str, ...], **kwargs) -> JointGatePolicy:
    return JointGatePolicy(
        modalities,
        backbones=tiny_backbones(modalities),
        joint_dim=12,
        hidden_size=10,
        mode="all_or_nothing",
        **kwargs,
    )


@pytest.mark.parametrize("modalities", MODALITY_SETS)
def test_decisions_are_equal_across_modalities_on_every_segment(modalities) -> None:
    policy = paper_gate(modalities, init_use=0.5)
    assert policy.head.out_features == 2 and torch.equal(
        policy.bits, all_or_nothing_bits(len(modalities))
    )
    views = make_views(modalities, 16, 6)
    for mode in (policy.train, policy.eval):
        mode()
        out = policy(views)
        d = out.decisions.detach()
        assert torch.equal(d, d[..., :1].expand_as(d)), mode
        if policy.training:  # sampled at p ~ 0.5: both choices occur, the check can fail
            assert 0.0 < float(d.mean()) < 1.0
        # the marginal logits are the same for every modality (one decision)
        assert torch.allclose(out.logits, out.logits[:, :, :1].expand_as(out.logits))


def test_every_parameter_gets_a_gradient_through_the_one_decision() -> None:
    mods = ("rgb", "audio", "flow")
    policy = paper_gate(mods).train()
    out = policy(make_views(mods, 3, 5))
    (out.decisions * torch.rand_like(out.decisions)).sum().backward()
    for name, param in policy.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_init_use_and_thresholds() -> None:
    policy = paper_gate(("rgb", "audio"), init_use=0.9)
    margin = float((policy.head.bias[1] - policy.head.bias[0]).detach())
    assert torch.sigmoid(torch.tensor(margin)) == pytest.approx(0.9)
    policy.eval()
    views = make_views(("rgb", "audio"), 20, 4)
    with torch.no_grad():
        before = policy(views).decisions.mean()
        policy.set_thresholds({"rgb": 1.5, "audio": 1.5})  # "all" pays both thresholds
        after = policy(views).decisions.mean()
    assert after < before


def test_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="all_or_nothing"):
        JointGatePolicy(("rgb", "audio"), backbones=tiny_backbones(("rgb", "audio")), mode="both")


def test_create_model_builds_the_paper_mode_and_its_checkpoint_reloads() -> None:
    args = {"policy": "joint_gate", "policy_args": {"mode": "all_or_nothing"}}
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=5, **args).eval()
    assert model.policy.mode == "all_or_nothing" and model.policy.head.out_features == 2
    x = {m: torch.randn(4, 3, *spec.shape) for m, spec in model.input_spec.items()}
    with torch.no_grad():
        out = model(x, decisions=None)
    assert torch.equal(out.decisions[..., 0], out.decisions[..., 1])
    again = adamml.create_model("test_adamml_rgb_audio", num_classes=5, **args)
    again.load_state_dict(model.state_dict())  # a checkpoint loads into the same mode
    other = adamml.create_model("test_adamml_rgb_audio", num_classes=5, policy="joint_gate")
    with pytest.raises(RuntimeError, match="head"):
        other.load_state_dict(model.state_dict())


def test_the_engine_trains_the_paper_mode(tmp_path) -> None:
    """Warm-up and a joint epoch through the Trainer: the policy's head moves (a gradient
    reached it), evaluation decides once for both modalities, and the checkpoint reloads."""
    import numpy as np

    from adamml.engine import TrainConfig, Trainer
    from adamml.engine.instantiate import model_from_checkpoint

    raw = {
        "model": "test_adamml_rgb_audio",
        "model_args": {"policy": "joint_gate", "policy_args": {"mode": "all_or_nothing"}},
        "num_classes": 3,
        "data": {"train": "synthetic:6", "segments_train": 2, "segments_eval": 3},
        "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 0},
        "batch_size": 3,
        "seed": 0,
        "pretrain": "none",
        "policy_start": "immediate",  # the policy pass runs in the one joint epoch
    }
    torch.manual_seed(0)
    start = adamml.create_model("test_adamml_rgb_audio", num_classes=3, **raw["model_args"])
    Trainer(TrainConfig.from_dict(raw), tmp_path / "run", show_progress=False).run()
    model, _ = model_from_checkpoint(tmp_path / "run" / "last.pt")
    assert model.policy.mode == "all_or_nothing"
    assert not torch.equal(model.policy.head.weight, start.policy.head.weight)
    saved = np.load(tmp_path / "run" / "decisions.npz")
    d = saved["decisions"]
    assert d.shape[-1] == 2 and (d[..., 0] == d[..., 1]).all()
