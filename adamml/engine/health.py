"""Is the policy learning? Collapse checks after each joint epoch (docs/training.md).

A policy *collapses* when it settles on a degenerate selection: a modality used on (nearly) no
segment although turning it on would change predictions, one used on (nearly) every segment
although turning it off would change none (the policy stopped deciding), or the whole model
stuck at chance. Joint training then carries on silently at chance accuracy or at fusion's
cost. `check_policy` looks at an epoch's numbers and, for a modality at an extreme, measures on
the validation set how many predictions would change if its decisions were flipped. A modality
on everywhere that the predictions need (sound when only sound tells the classes apart) is
not a collapse.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .distributed import DistInfo, all_gather_objects, unwrap
from .evaluate import to_device

__all__ = [
    "PolicyCollapseWarning",
    "check_policy",
    "flip_effect",
    "ADVICE",
    "EXTREME",
    "MATTERS",
    "IDLE",
]

EXTREME = 1.0
"""A selection rate within this many percent of 0 or 100 is an extreme."""
MATTERS = 5.0
"""A modality that is never selected is a collapse when turning it on changes at least this
many percent of the validation predictions."""
IDLE = 1.0
"""A modality that is always selected is a collapse when turning it off changes fewer than this
many percent of the validation predictions."""
ADVICE = (
    "What usually helps: keep pretrain: auto (the default) or give init checkpoints for "
    "every part, lower loss.cost_scale (or loss.cost_weights), keep the policy's "
    "init_use at 0.9 (the default), lower optim.policy_lr."
)


class PolicyCollapseWarning(UserWarning):
    """The policy selects a modality almost never or almost always although it matters, or
    validation accuracy is at chance."""


@torch.no_grad()
def flip_effect(model: nn.Module, loader: Any, info: DistInfo, index: int, value: float) -> float:
    """Percent of videos whose predicted class changes when modality ``index``'s decisions
    are forced to ``value`` on every segment (the others as the policy decided).

    Args:
        model: an AdaMML-like model (taking ``decisions=``).
        loader: validation batches ``(index, inputs, label)``.
        info: the process's place in the process group (counts are summed over ranks).
        index: the modality's position in the decisions' M axis.
        value: 0.0 (never) or 1.0 (always).
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    changed = total = 0
    try:
        for _, inputs, _ in loader:
            x = to_device(inputs, info.device)
            out = net(x)
            forced = out.decisions.clone()
            forced[..., index] = value
            flipped = net(x, decisions=forced)
            changed += int((flipped.logits.argmax(1) != out.logits.argmax(1)).sum())
            total += int(out.logits.shape[0])
    finally:
        net.train(was_training)
    counts = all_gather_objects((changed, total), info)
    changed, total = sum(c for c, _ in counts), sum(t for _, t in counts)
    return 100.0 * changed / max(1, total)


def check_policy(
    *,
    epoch: int,
    train_rates: Mapping[str, float],
    val: Mapping[str, Any] | None,
    num_classes: int,
    modalities: tuple[str, ...],
    model: nn.Module,
    val_loader: Any,
    info: DistInfo,
) -> list[str]:
    """The collapse warnings of one joint epoch (empty when the policy looks healthy).

    Args:
        epoch: the joint epoch (0-based), for the message.
        train_rates: the epoch's policy-pass selection rates, ``{modality: percent}``.
        val: the epoch's validation metrics, if it was validated.
        num_classes: K (chance is ``100 / K`` percent for single-label data).
        modalities: the M order of the decisions.
        model: the model (for the flip test).
        val_loader: validation batches (``None``: extremes are reported without the test).
        info: the process group.

    Returns:
        One message naming every problem and ending with `ADVICE`, or none.
    """
    problems: list[str] = []
    for k, m in enumerate(modalities):
        rate = float(train_rates.get(m, 50.0))
        if EXTREME < rate < 100.0 - EXTREME:
            continue
        never = rate <= EXTREME
        if val_loader is None:
            problems.append(f"{m} was selected on {rate:.1f}% of training segments")
            continue
        changed = flip_effect(model, val_loader, info, k, 1.0 if never else 0.0)
        if never and changed >= MATTERS:
            problems.append(
                f"{m} was selected on {rate:.1f}% of training segments, yet "
                f"turning it on changes {changed:.0f}% of validation predictions"
            )
        elif not never and changed < IDLE:
            problems.append(
                f"{m} was selected on {rate:.1f}% of training segments, yet "
                f"turning it off changes only {changed:.1f}% of validation "
                "predictions (the policy no longer decides)"
            )
    if val is not None and "top1" in val:
        chance = 100.0 / max(1, num_classes)
        if float(val["top1"]) < chance + 5.0:
            problems.append(
                f"validation top-1 {float(val['top1']):.1f}% is at chance "
                f"({chance:.1f}% for {num_classes} classes)"
            )
    if not problems:
        return []
    return [f"policy collapse in joint epoch {epoch + 1}: {'; '.join(problems)}. {ADVICE}"]


def warn(messages: list[str], *, is_main: bool, seen: set[str]) -> None:
    """Emit a `PolicyCollapseWarning` on rank 0 (shown on stderr) for each problem not warned
    about earlier in the run (``seen`` holds their kinds; every epoch's problems are logged)."""
    for message in messages:
        kind = _kind(message)
        if is_main and kind not in seen:
            warnings.warn(message, PolicyCollapseWarning, stacklevel=3)
        seen.add(kind)


def _kind(message: str) -> str:
    """The problems of a message without the epoch and the numbers."""
    import re

    return re.sub(r"[0-9.]+%?", "#", message.split(": ", 1)[-1])


def chance_ce(num_classes: int) -> float:
    """The cross-entropy of the uniform prediction, ``log K``."""
    return math.log(max(1, num_classes))
