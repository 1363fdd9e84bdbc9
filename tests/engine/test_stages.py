"""Stages: the plan, what is frozen (BN stays put), schedulers acting on the optimisers in use."""

from __future__ import annotations

import torch
from conftest import merged
from standin import make_model

from adamml.engine.config import TrainConfig
from adamml.engine.stages import build_optimizers, build_plan, build_schedulers, set_trainable


def cfg(**over) -> TrainConfig:
    return TrainConfig.from_dict(merged(**over))


def test_plan_per_epoch_and_per_iteration() -> None:
    model = make_model(3)
    plan = build_plan(cfg(), model)
    assert [(p.stage, p.phase) for p in plan] == [
        ("warmup", "recognition"),
        ("joint", "recognition"),
        ("joint", "policy"),
        ("joint", "recognition"),
        ("joint", "policy"),
        ("finetune", "recognition"),
    ]
    assert [p.epoch_end for p in plan] == [True, False, True, False, True, True]
    plan = build_plan(cfg(alternation="iteration"), model)
    assert [p.phase for p in plan if p.stage == "joint"] == ["alternate", "alternate"]


def test_models_without_policy_train_one_supervised_stage() -> None:
    plan = build_plan(cfg(), make_model(3, learned=False))
    assert {p.stage for p in plan} == {"supervised"} and len(plan) == 4
    plan = build_plan(cfg(schedule={"epochs": 2}), make_model(3, modalities="rgb", learned=False))
    assert [p.stage for p in plan] == ["unimodal", "unimodal"]


def _bn_stats_after_policy_step(freeze: bool) -> tuple[torch.Tensor, torch.Tensor]:
    model = make_model(3, bn=True)
    c = cfg(freeze_bn_of_frozen=freeze)
    set_trainable(model, "policy", stage="joint", cfg=c)
    bn = model.router.backbones["rgb"].norm
    before = bn.running_mean.clone()
    x = {m: torch.randn(4, 2, *s.shape) for m, s in model.input_spec.items()}
    model(x).logits.sum().backward()
    assert all(p.grad is None for p in model.router.parameters())
    assert any(p.grad is not None for p in model.policy.parameters())
    return before, bn.running_mean


def test_frozen_part_keeps_bn_statistics_unless_asked() -> None:
    before, after = _bn_stats_after_policy_step(freeze=True)
    assert torch.equal(before, after)
    before, after = _bn_stats_after_policy_step(freeze=False)  # the reference's drift
    assert not torch.equal(before, after)


def test_frozen_policy_gate_samples_or_takes_argmax() -> None:
    model = make_model(3)
    set_trainable(model, "recognition", stage="joint", cfg=cfg())
    assert model.policy.gate.training
    set_trainable(model, "recognition", stage="joint", cfg=cfg(frozen_policy="argmax"))
    assert not model.policy.gate.training and model.router.training


def test_schedulers_act_on_the_optimisers_in_use() -> None:
    model = make_model(3)
    c = cfg(milestones=[1], lr_gamma=0.1)
    opts = build_optimizers(model, "joint", c)
    assert set(opts) == {"recognition", "policy"}
    assert isinstance(opts["policy"], torch.optim.Adam)
    assert opts["recognition"].param_groups[0]["momentum"] == 0.9
    scheds = build_schedulers(opts, 2, c)
    for s in scheds.values():
        s.step()
    assert opts["recognition"].param_groups[0]["lr"] == 0.05 * 0.1
    assert abs(opts["policy"].param_groups[0]["lr"] - c.optim.policy_lr * 0.1) < 1e-12
    cos = build_schedulers(
        build_optimizers(model, "finetune", cfg(lr_schedule="cosine")), 2, cfg(lr_schedule="cosine")
    )
    cos["recognition"].step()
    cos["recognition"].step()
    assert cos["recognition"].optimizer.param_groups[0]["lr"] < 1e-12


def test_recognition_optimizer_may_be_adam() -> None:
    model = make_model(3)
    opts = build_optimizers(model, "warmup", cfg(optimizer="adam", lr=0.003, weight_decay=0.0))
    assert isinstance(opts["recognition"], torch.optim.Adam)
    assert opts["recognition"].param_groups[0]["lr"] == 0.003
    assert isinstance(build_optimizers(model, "warmup", cfg())["recognition"], torch.optim.SGD)
    import pytest

    from adamml.errors import ConfigError

    with pytest.raises(ConfigError, match="optim.optimizer"):
        cfg(optimizer="lamb")


def test_a_plain_model_trains_everything_as_recognition() -> None:
    """Without the model's parameter groups nothing is guessed from names: no learned policy,
    one supervised stage, every parameter trained."""
    from torch import nn

    from adamml.engine.stages import has_learned_policy, split_parameters

    class Plain(nn.Module):
        modalities = ("rgb", "audio")

        def __init__(self) -> None:
            super().__init__()
            self.policy = nn.Linear(2, 2)  # a child named "policy" means nothing by itself
            self.net = nn.Linear(2, 2)

    model = Plain()
    rec, pol = split_parameters(model)
    assert len(rec) == 4 and pol == [] and not has_learned_policy(model)
    assert {p.stage for p in build_plan(cfg(), model)} == {"supervised"}
    model.eval().requires_grad_(False)
    set_trainable(model, "recognition", stage="supervised", cfg=cfg())
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_set_trainable_asks_the_model_for_its_phase() -> None:
    calls = []
    model = make_model(3)
    model.set_phase = lambda phase, **kw: calls.append((phase, kw))  # type: ignore[method-assign]
    set_trainable(model, "recognition", stage="warmup", cfg=cfg(frozen_policy="argmax"))
    set_trainable(model, "recognition", stage="joint", cfg=cfg(frozen_policy="argmax"))
    set_trainable(model, "policy", stage="joint", cfg=cfg(freeze_bn_of_frozen=False))
    assert calls == [
        ("recognition", {"freeze_statistics": True, "policy_decisions": "sample"}),
        ("recognition", {"freeze_statistics": True, "policy_decisions": "argmax"}),
        ("policy", {"freeze_statistics": False, "policy_decisions": "sample"}),
    ]
