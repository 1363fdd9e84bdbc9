"""The training plan: stages, passes, what is frozen, optimisers and LR schedules (reference §6).

AdaMML ("Training Details") trains in three stages:

```
warm-up   (W epochs)  policy frozen        recognition: CE, SGD
joint     (J epochs)  alternate per epoch: recognition pass (CE, SGD, policy frozen)
                                           policy pass (CE + efficiency, Adam, recognition frozen)
                      or per iteration in one pass (alternation: iteration)
fine-tune (F epochs)  best policy, frozen  recognition: CE, SGD
```

Models without a learned policy (unimodal, weighted fusion, random) train in one ``supervised``
stage (``unimodal`` for one modality). A *pass* is one sweep over the training data; the plan is
the flat list of passes, and a checkpoint is written after each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import TrainConfig

__all__ = [
    "Pass",
    "build_plan",
    "has_learned_policy",
    "split_parameters",
    "set_trainable",
    "build_optimizers",
    "build_schedulers",
    "current_lrs",
]


@dataclass(frozen=True)
class Pass:
    """One sweep over the training data.

    Attributes:
        stage: ``warmup``, ``joint``, ``finetune``, ``supervised`` or ``unimodal``.
        epoch: epoch within the stage (0-based).
        phase: what is trained: ``recognition``, ``policy`` or ``alternate`` (both, by step).
        epoch_end: the last pass of the epoch (validation, LR and temperature steps follow).
        stage_epochs: epochs in this stage (for the cosine schedule).
    """

    stage: str
    epoch: int
    phase: str
    epoch_end: bool
    stage_epochs: int


def has_learned_policy(model: nn.Module) -> bool:
    """True when the policy has parameters (learned policies; not random or all-on)."""
    return any(True for _ in split_parameters(model)[1])


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(recognition, policy) parameters, as the model groups them
    (`adamml.AdaMML.recognition_parameters`, `policy_parameters`). A model without both
    methods has no learned policy: every parameter is a recognition parameter."""
    if hasattr(model, "recognition_parameters") and hasattr(model, "policy_parameters"):
        return list(model.recognition_parameters()), list(model.policy_parameters())
    return list(model.parameters()), []


def build_plan(cfg: TrainConfig, model: nn.Module) -> list[Pass]:
    """The flat list of passes for ``model`` under ``cfg.schedule``."""
    s = cfg.schedule
    plan: list[Pass] = []
    if not has_learned_policy(model):
        epochs = (
            s.epochs
            if s.epochs is not None
            else (s.warmup_epochs + s.joint_epochs + s.finetune_epochs)
        )
        stage = "unimodal" if len(getattr(model, "modalities", ())) == 1 else "supervised"
        return [Pass(stage, e, "recognition", True, epochs) for e in range(epochs)]
    plan += [
        Pass("warmup", e, "recognition", True, s.warmup_epochs) for e in range(s.warmup_epochs)
    ]
    for e in range(s.joint_epochs):
        if cfg.alternation == "epoch":
            plan.append(Pass("joint", e, "recognition", False, s.joint_epochs))
            plan.append(Pass("joint", e, "policy", True, s.joint_epochs))
        else:
            plan.append(Pass("joint", e, "alternate", True, s.joint_epochs))
    plan += [
        Pass("finetune", e, "recognition", True, s.finetune_epochs)
        for e in range(s.finetune_epochs)
    ]
    return plan


def set_trainable(model: nn.Module, phase: str, *, stage: str, cfg: TrainConfig) -> None:
    """Put ``model`` in the modes of ``phase`` (``recognition`` or ``policy``).

    The trained part is in train mode with gradients on. The frozen part has gradients off and,
    with ``cfg.freeze_bn_of_frozen``, its normalisation and dropout layers in eval mode so BN
    statistics stay put (the reference lets them drift). Gates of a frozen policy keep sampling
    (``frozen_policy: sample``, the reference) or take the argmax (``argmax``); in warm-up with
    ``warmup_policy: all`` the decisions are forced to all-on by the trainer instead.

    The model does it (`adamml.AdaMML.set_phase`); a model without ``set_phase`` is put in
    train mode with gradients on its ``phase`` half of `split_parameters` only.
    """
    decisions = "argmax" if cfg.frozen_policy == "argmax" and stage != "warmup" else "sample"
    set_phase = getattr(model, "set_phase", None)
    if callable(set_phase):
        set_phase(phase, freeze_statistics=cfg.freeze_bn_of_frozen, policy_decisions=decisions)
        return
    model.train()
    rec, pol = split_parameters(model)
    for p in rec:
        p.requires_grad_(phase != "policy")
    for p in pol:
        p.requires_grad_(phase == "policy")


def build_optimizers(
    model: nn.Module, stage: str, cfg: TrainConfig
) -> dict[str, torch.optim.Optimizer]:
    """SGD (or Adam, ``optim.optimizer``) for the recognition network in every stage, plus Adam
    for the policy in ``joint`` (lr 0.001/0.01, momentum 0.9, weight decay 1e-4; reference §6)."""
    o = cfg.optim
    rec, pol = split_parameters(model)
    opts: dict[str, torch.optim.Optimizer] = {
        "recognition": torch.optim.SGD(
            rec, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
        )
        if o.optimizer == "sgd"
        else torch.optim.Adam(rec, lr=o.lr, weight_decay=o.weight_decay)
    }
    if stage == "joint" and pol:
        opts["policy"] = torch.optim.Adam(pol, lr=o.policy_lr, weight_decay=o.policy_weight_decay)
    return opts


def build_schedulers(
    opts: dict[str, torch.optim.Optimizer], stage_epochs: int, cfg: TrainConfig
) -> dict[str, Any]:
    """One LR scheduler per optimiser *in use*, stepped once per epoch of the stage."""
    o = cfg.optim
    out: dict[str, Any] = {}
    for name, opt in opts.items():
        if o.lr_schedule == "multistep":
            out[name] = torch.optim.lr_scheduler.MultiStepLR(opt, list(o.milestones), o.lr_gamma)
        elif o.lr_schedule == "cosine":
            out[name] = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, stage_epochs))
        else:
            out[name] = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return out


def current_lrs(opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
    """``{optimiser name: learning rate of its first group}``."""
    return {name: float(opt.param_groups[0]["lr"]) for name, opt in opts.items()}
