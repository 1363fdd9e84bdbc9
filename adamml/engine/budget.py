"""A GFLOPs target in training: the cost weights lambda_k of AdaMML Eq. 4 adapted online.

AdaMML trades accuracy for cost through lambda_k (and gamma), tuned by hand per dataset ("We use
these parameters to vary the operating point of our model"). With ``loss.target_gflops`` the
trainer tunes them instead: the weights it uses are ``s * lambda_k``, one scale ``s > 0`` on the
configured ones, and after every policy batch

```
g      = r * (expected GFLOPs per video of the batch's decisions)
e      = e + ALPHA * (clip((g - T) / T, -1, 1) - e)   T: the target; e starts at the first
eta    = loss.target_step if e > 0 else DOWN * loss.target_step
log s <- clip(log s + eta * e, log S_MIN, log S_MAX)
```

(dual ascent on the budget constraint in log space). Over budget, ``s`` grows and the policy is
pushed to skip more; under budget it shrinks, and the cross-entropy takes back the modalities it
needs.

**Slow to press, quicker to ease off.** A policy starts near all-on (``init_use`` 0.9) and
needs a few epochs to learn which segments need a modality; pressed hard before that, it drops
the modality everywhere and may not come back. On SyntheticAV seed 0 a step of 0.05 did that
(``s`` reached 6.7 within two joint epochs; validation top-1 fell from 83 % to 59 % with RGB on
no segment), 0.02 did not. Easing off carries no such risk, and the way back from an overshoot
below the target was the slow part with 0.02, so ``s`` falls ``DOWN`` (2) times faster than it
rises (5 times overshot the other way: the cost climbed to twice a 40 % target). The per-batch
error is smoothed (``ALPHA``, about five batches) because with unequal steps noise alone would
pull ``s`` down.

**What is measured.** The batch's cost is the *expected* cost of its decisions, each modality
on each segment priced with the policy's probability of selecting it (``model.cost_table``;
per video at ``data.segments_eval`` segments, since costs are linear in the segments). It is a
smooth function of the policy's logits, so ``s`` stops growing as soon as the policy starts to
give way. Pricing the argmax decisions instead (what evaluation takes) let ``s`` wind up while
the policy's probabilities were still above one half and the cost had not moved, then overshoot
to skipping everything: on SyntheticAV the cost swung between the policy's floor and all-on with
a period of about six epochs.

**The calibration r.** A policy does not select the same share of segments in training and in
evaluation: training videos have ``data.segments_train`` segments (5) that each span twice as
many frames as evaluation's 10, and evaluation takes the argmax. On SyntheticAV the same
policy cost 0.026 GFLOPs per video at 5 segments and 0.021 at 10. So after each validation of a
joint epoch, ``r`` becomes the validation GFLOPs over the policy pass's mean measured cost
(clipped to ``[1/4, 4]``): the controller then steers what validation measures. Only the
validation videos' cost is used, never their labels; without ``data.val``, ``r`` stays 1.

**Why log space.** The right scale of lambda spans orders of magnitude across models and data
(the reference's rgb 1.0 made the tiny policy drop RGB within an epoch, 0.15 kept it), so a step
is a *relative* change of ``s``: the same ``eta`` works whatever the configured weights, and
``s`` stays positive without a projection at 0 that it would have to climb back from linearly.
The error is relative to the target for the same reason (no GFLOPs units in ``eta``), and
clipped so that one batch far off the target moves ``s`` by at most a factor ``exp(eta)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .distributed import DistInfo, all_reduce_sum

__all__ = [
    "CostController",
    "ALPHA",
    "DOWN",
    "S_MIN",
    "S_MAX",
    "R_MAX",
    "R_GAIN",
    "batch_cost",
    "check_target",
]

S_MIN, S_MAX = 0.01, 100.0
"""The range of the scale on the configured cost weights: two orders of magnitude either way.
A wider range only lets ``s`` wind up while a target is out of reach (under budget with no
penalty at all, or over it at any penalty the policy can still pay), and then take longer to
come back."""

ALPHA = 0.2
"""The weight of a batch's error in the smoothed error ``e`` (about the last five batches)."""

DOWN = 2.0
"""How many times faster ``s`` falls than it rises (see "Slow to press, quicker to ease off")."""

R_MAX = 2.0
"""The calibration ``r`` stays in ``[1 / R_MAX, R_MAX]``."""
R_GAIN = 0.5
"""Each validation moves ``log r`` this share of the way to what it measured."""


class CostController:
    """The scale ``s`` on the cost weights of AdaMML Eq. 4 that steers the policy's cost to
    ``target`` (see the module docstring for the update, the calibration and why it is in log
    space).

    The state is four numbers (``log s``, ``log r``, the smoothed error and the update count)
    saved in every
    checkpoint (`state_dict`), and the updates read only all-reduced costs, so the controller is
    deterministic, the same on every rank, and a resumed run continues it exactly.

    Args:
        target: GFLOPs per video (paper convention, at the evaluation's segments).
        step: the change of ``log s`` per policy batch at an error of +100 % (``DOWN`` times
            more at -100 %).
        scale: the starting ``s`` (1: the configured weights).

    Raises:
        ConfigError: for a target or step that is not a positive number.

    Example:
        >>> c = CostController(0.02, step=0.1)
        >>> round(c.update(0.04), 4)  # twice the target: s grows by exp(0.1)
        1.1052
        >>> round(c.update(0.0), 4)  # e = 1 + 0.2 * (-1 - 1) = 0.6: still over, s grows
        1.1735
    """

    def __init__(self, target: float, *, step: float = 0.02, scale: float = 1.0) -> None:
        for key, value in (("loss.target_gflops", target), ("loss.target_step", step)):
            if not _positive(value):
                raise ConfigError(f"config key {key!r} must be a number > 0; got {value!r}")
        self.target, self.step = float(target), float(step)
        self.log_scale = math.log(min(max(float(scale), S_MIN), S_MAX))
        self.log_calibration = 0.0
        self.error = 0.0
        self.updates = 0
        self._pass_sum, self._pass_n = 0.0, 0
        self._last_pass: float | None = None

    @property
    def scale(self) -> float:
        """``s``, the factor on every configured lambda_k."""
        return math.exp(self.log_scale)

    @property
    def calibration(self) -> float:
        """``r``, validation GFLOPs per measured training GFLOPs (1 until a validation)."""
        return math.exp(self.log_calibration)

    def update(self, gflops: float) -> float:
        """One dual step from a batch's measured GFLOPs per video; returns the new ``s``."""
        corrected = float(gflops) * self.calibration
        error = min(max((corrected - self.target) / self.target, -1.0), 1.0)
        self.error = error if self.updates == 0 else self.error + ALPHA * (error - self.error)
        step = self.step if self.error > 0 else DOWN * self.step
        lo, hi = math.log(S_MIN), math.log(S_MAX)
        self.log_scale = min(max(self.log_scale + step * self.error, lo), hi)
        self.updates += 1
        self._pass_sum += float(gflops)
        self._pass_n += 1
        return self.scale

    def observe(self, cost_sum: float, videos: int, info: DistInfo) -> float:
        """Update from one policy batch of this rank: ``cost_sum`` is the sum over its videos
        of the GFLOPs per video (see `batch_cost`). The sums are all-reduced first, so every
        rank takes the same step. Returns the measured GFLOPs per video of the global batch."""
        total = all_reduce_sum(torch.tensor([cost_sum, float(videos)], dtype=torch.float64), info)
        gflops = float(total[0]) / max(1.0, float(total[1]))
        self.update(gflops)
        return gflops

    def record(self, weights: Mapping[str, float]) -> dict[str, Any]:
        """End a pass and say what it logs: ``scale``, the effective ``lambda`` (``s * lambda_k``
        of ``weights``), ``target_gflops``, ``calibration`` and ``gflops`` (the mean measured
        cost of the pass's policy batches; only when the pass had any)."""
        out: dict[str, Any] = {
            "scale": self.scale,
            "lambda": {m: self.scale * w for m, w in weights.items()},
            "target_gflops": self.target,
            "calibration": self.calibration,
        }
        self._last_pass = self._pass_sum / self._pass_n if self._pass_n else None
        if self._last_pass is not None:
            out["gflops"] = self._last_pass
        self._pass_sum, self._pass_n = 0.0, 0
        return out

    def calibrate(self, val_gflops: float) -> float | None:
        """Set ``r`` from the validation GFLOPs measured right after a policy pass (see the
        module docstring); returns the new ``r``, or None when the pass just recorded had no
        policy batches (``r`` unchanged)."""
        if self._last_pass is None or self._last_pass <= 0 or val_gflops <= 0:
            return None
        bound = math.log(R_MAX)
        seen = math.log(val_gflops / self._last_pass)
        # halfway to what this validation saw: one epoch caught mid-transition moves r less
        self.log_calibration += R_GAIN * (seen - self.log_calibration)
        self.log_calibration = min(max(self.log_calibration, -bound), bound)
        self._last_pass = None
        return self.calibration

    def state_dict(self) -> dict[str, float]:
        """``{"log_scale", "log_calibration", "error", "updates"}``, plain numbers for the
        checkpoint."""
        return {
            "log_scale": self.log_scale,
            "log_calibration": self.log_calibration,
            "error": self.error,
            "updates": self.updates,
        }

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        """Restore `state_dict` (the per-pass sums start empty: checkpoints end passes)."""
        self.log_scale = float(state["log_scale"])
        self.log_calibration = float(state.get("log_calibration", 0.0))
        self.error = float(state.get("error", 0.0))
        self.updates = int(state["updates"])
        self._pass_sum, self._pass_n, self._last_pass = 0.0, 0, None


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def batch_cost(out: Any, model: nn.Module, segments: int) -> float:
    """The sum over a training batch's videos of their expected cost, in GFLOPs per video at
    ``segments`` segments (AdaMML reference §7 cost formula).

    Each modality on each segment is priced with the policy's probability of selecting it,
    ``softmax(out.policy_logits)[..., 1]`` (``(B, S, M, 2)`` logits; a joint-combination gate's
    are marginal log-probabilities, so this is its marginal too), with ``model.cost_table``. A
    model without a cost table or policy logits is charged its ``out.gflops`` (the sampled
    decisions), scaled the same way.

    Args:
        out: the model's `ModelOutput` on the batch.
        model: the model (unwrapped), for ``cost_table``.
        segments: S of evaluation (``data.segments_eval``); costs scale linearly with S.
    """
    table = getattr(model, "cost_table", None)
    logits: Tensor | None = out.policy_logits
    s = out.decisions.shape[1]
    if table is not None and logits is not None and logits.dim() == 4 and logits.shape[-1] == 2:
        use = torch.softmax(logits.detach().float(), dim=-1)[..., 1]
        per_video = table.per_video(use)
    else:
        per_video = out.gflops.detach()
    return float(per_video.double().sum()) * segments / s


def check_target(target: float, model: nn.Module, segments: int, has_policy: bool) -> None:
    """Refuse a target the policy cannot reach.

    Raises:
        ConfigError: for a model without a learned policy, a target at or above the cost of
            every modality on every segment (nothing to save), or at or below the policy's own
            cost (skipping everything still costs the policy).
    """
    if not has_policy:
        raise ConfigError(
            "loss.target_gflops needs a model with a learned policy (it adapts the efficiency "
            "loss of the policy passes); this model has none. Remove loss.target_gflops."
        )
    table = getattr(model, "cost_table", None)
    if table is None:
        return
    floor = segments * table.policy_total
    all_on = segments * (table.recognition_total + table.policy_total)
    where = f"per video at data.segments_eval={segments} segments, paper convention"
    if target >= all_on:
        raise ConfigError(
            f"loss.target_gflops={target:g} is not below the cost of using every modality on "
            f"every segment ({all_on:.6g} GFLOPs {where}): there is nothing to save. Lower it, "
            "or remove it to train with the fixed cost weights."
        )
    if target <= floor:
        raise ConfigError(
            f"loss.target_gflops={target:g} is not above the policy's own cost ({floor:.6g} "
            f"GFLOPs {where}), which every video pays even when every modality is skipped. "
            f"Choose a target between {floor:.6g} and {all_on:.6g}."
        )
