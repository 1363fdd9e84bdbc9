"""Any budget from one trained model: decision thresholds calibrated to a GFLOPs target.

A trained policy uses modality m on a segment when its margin ``logit_use - logit_skip``
exceeds the threshold t_m (0 after training; `adamml.policies.PolicyLSTM`). Raising t_m skips
the segments where the policy was least sure it needed m, so one trained model reaches any
budget between its policy's own cost and weighted fusion without retraining.

```
validation set --one pass, every segment through every backbone--> CalibrationData
    margins (N, S, M), recognition outputs {m: (N, S, K)}, policy features (N, S, J)
thresholds t = s * w  (w_m: m's GMACs per segment / the largest; "shared": w_m = 1)
    s = the smallest value whose replayed cost fits the target (search over the margins' steps)
set t on the policy --> a real evaluation pass measures GFLOPs and accuracy
    (off the prediction by more than the tolerance: margins refreshed from it, solved again)
```

The pass, the rule (least margin per GMAC dropped first) and the replay of any thresholds
without running a backbone again live in `adamml.engine.replay`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .metrics import EvalResult, summarize
from .replay import (
    collect_calibration_data,
    fusion_gflops,
    run_pass,
    solve_thresholds,
    thresholds_of,
)

__all__ = [
    "CalibrationResult",
    "calibrate",
    "save_calibrated",
    "calibrated_path",
]

_RESUME_ONLY = ("optimizers", "schedulers", "grad_scaler")


@dataclass(frozen=True)
class CalibrationResult:
    """What [`calibrate`][adamml.engine.calibrate.calibrate] chose and measured.

    Attributes:
        thresholds: ``{modality: t_m}`` now set on the policy.
        scale: s in ``t = s * w``.
        rule: one of `RULES`.
        target_gflops: the budget (GMACs per video, paper convention).
        predicted_gflops: the cost replayed from the calibration pass.
        gflops: the cost measured by the last evaluation pass.
        fusion_gflops: every modality on every segment, no policy (`fusion_gflops`).
        metrics: `summarize` of the last evaluation pass (``top1``, ``mAP``,
            ``selection_rate``, ``gflops``, ...).
        passes: evaluation passes run after the calibration pass.
        tolerance: the relative tolerance asked for.
    """

    thresholds: dict[str, float]
    scale: float
    rule: str
    target_gflops: float
    predicted_gflops: float
    gflops: float
    fusion_gflops: float
    metrics: dict[str, Any]
    passes: int
    tolerance: float

    @property
    def error(self) -> float:
        """``gflops / target_gflops - 1``."""
        return self.gflops / self.target_gflops - 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain values (what the calibrated checkpoint stores under ``calibration``)."""
        return {
            "thresholds": dict(self.thresholds),
            "scale": self.scale,
            "rule": self.rule,
            "target_gflops": self.target_gflops,
            "predicted_gflops": self.predicted_gflops,
            "gflops": self.gflops,
            "fusion_gflops": self.fusion_gflops,
            "metrics": dict(self.metrics),
            "passes": self.passes,
            "tolerance": self.tolerance,
        }


# -- calibrate ---------------------------------------------------------------------------------
def calibrate(
    model: nn.Module,
    loader: Iterable[Any],
    target_gflops: float,
    *,
    rule: str = "cost",
    tolerance: float = 0.05,
    max_passes: int = 4,
    device: str | torch.device | None = None,
    show_progress: bool = False,
) -> CalibrationResult:
    """Set ``model``'s decision thresholds so that it costs ``target_gflops`` per video on
    ``loader``'s videos, without retraining (docs/calibration.md).

    One pass with every segment through every backbone keeps the margins, the policy's features
    and the recognition outputs (`collect_calibration_data`); `solve_thresholds` picks
    ``t = s * w``; an evaluation pass with the thresholds set measures GFLOPs and accuracy. If
    the measured cost is off the replayed one by more than ``tolerance`` (a policy whose later
    decisions depend on earlier ones in a way its margins do not show), the margins and features
    of that pass replace the old ones and the thresholds are solved again, at most
    ``max_passes`` times. `PolicyLSTM` feeds its raw logits back, not its decisions, so its
    margins do not move with the thresholds and one pass is exact.

    Args:
        model: an [`AdaMML`][adamml.model.AdaMML] model with a learned policy (``lstm``, ``fc``,
            ``joint_gate``); its thresholds are set in place.
        loader: validation batches, ``(index, inputs, target)`` or ``(inputs, target)``.
        target_gflops: the budget, GMACs per video in the paper convention (what
            ``metrics.json`` reports); `fusion_gflops` gives weighted fusion's.
        rule: ``"cost"`` (thresholds in proportion to each modality's GMACs: the least
            margin per GMAC is dropped first) or ``"shared"`` (one threshold for all).
        tolerance: the relative gap between measured and replayed cost that triggers another
            pass, and the one the result is warned about against the target.
        max_passes: evaluation passes at most.
        device: where the inputs go (default: the model's).
        show_progress: tqdm bars.

    Returns:
        A [`CalibrationResult`][adamml.engine.calibrate.CalibrationResult].

    Raises:
        ConfigError: for a policy without thresholds, a bad target, rule or tolerance, or a
            target below what the thresholds can reach.

    Example:
        >>> budget = 0.3 * adamml.fusion_gflops(model, 10)  # doctest: +SKIP
        >>> result = adamml.calibrate(model, val_loader, budget)  # doctest: +SKIP
        >>> result.gflops, result.thresholds  # doctest: +SKIP
    """
    target = float(target_gflops)
    if not math.isfinite(target) or target <= 0:
        raise ConfigError(f"target_gflops must be a number > 0; got {target_gflops!r}")
    if not 0 < float(tolerance) < 1:
        raise ConfigError(f"tolerance must be in (0, 1); got {tolerance!r}")
    policy = thresholds_of(model)
    data = collect_calibration_data(model, loader, device=device, show_progress=show_progress)
    passes = 0
    while True:
        thresholds, scale, predicted = solve_thresholds(model, data, target, rule=rule)
        policy.set_thresholds(thresholds)
        run = run_pass(
            model, loader, all_on=False, device=device, show_progress=show_progress, desc="check"
        )
        passes += 1
        metrics = summarize(_result(run, model))
        measured = float(metrics["gflops"])
        if abs(measured - predicted) <= tolerance * target or passes >= max_passes:
            break
        # the decisions moved the margins: solve again from what this pass saw
        data = replace(data, margins=run["margins"], thresholds=run["thresholds"])
        if "features" in run:
            data = replace(data, features=run["features"])
    if abs(measured / target - 1) > tolerance:
        warnings.warn(
            f"calibration reached {measured:.6g} GFLOPs for a target of {target:.6g} "
            f"({100 * (measured / target - 1):+.1f} %); a small validation set has coarse steps",
            stacklevel=2,
        )
    return CalibrationResult(
        thresholds=policy.threshold_dict(),
        scale=scale,
        rule=rule,
        target_gflops=target,
        predicted_gflops=predicted,
        gflops=measured,
        fusion_gflops=fusion_gflops(model, data.segments),
        metrics=metrics,
        passes=passes,
        tolerance=float(tolerance),
    )


def _result(run: Mapping[str, Any], model: nn.Module) -> EvalResult:
    return EvalResult.from_parts(run, model.modalities)


def save_calibrated(
    checkpoint: str | Path,
    model: nn.Module,
    result: CalibrationResult,
    out: str | Path | None = None,
    *,
    data: str | None = None,
) -> Path:
    """Write a copy of a training checkpoint with ``model``'s thresholds and the calibration
    record, atomically (`adamml.engine.checkpoint.save_checkpoint`); the original stays.

    The copy has the original's model name, config and classes, the model's state dict (the
    thresholds in ``policy.thresholds``) and ``calibration`` (`CalibrationResult.to_dict`, the
    source checkpoint and ``data``); the optimiser states, which only resuming needs, are left
    out. ``adamml eval`` and ``adamml predict`` read it like any checkpoint.

    Args:
        checkpoint: the training checkpoint the model was loaded from.
        model: the calibrated model.
        result: what `calibrate` returned.
        out: the new file (default: ``<checkpoint>.calibrated-<target>gflops.pt`` beside it).
        data: the calibration data source, for the record.

    Returns:
        The written path.

    Raises:
        CheckpointError: if ``out`` is the original checkpoint, or it cannot be read.
    """
    from .checkpoint import load_checkpoint, save_checkpoint

    source = _source(checkpoint)
    target = calibrated_path(checkpoint, result.target_gflops, out)
    state = {k: v for k, v in load_checkpoint(source).items() if k not in _RESUME_ONLY}
    state["model"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    state["calibration"] = {**result.to_dict(), "source": str(source), "data": data}
    return save_checkpoint(state, target.parent, target.name, update_last=False)


def _source(checkpoint: str | Path) -> Path:
    source = Path(checkpoint)
    return source / "last.pt" if source.is_dir() else source


def calibrated_path(
    checkpoint: str | Path, target_gflops: float, out: str | Path | None = None
) -> Path:
    """Where `save_calibrated` writes: ``out``, or ``<checkpoint>.calibrated-<target>gflops.pt``
    beside the checkpoint.

    Raises:
        CheckpointError: if that is the checkpoint itself (the original is kept).
    """
    source = _source(checkpoint)
    target = (
        Path(out)
        if out is not None
        else source.with_name(f"{source.stem}.calibrated-{float(target_gflops):.4g}gflops.pt")
    )
    if target.resolve() == source.resolve() or (
        target.exists() and source.exists() and target.samefile(source)
    ):
        raise CheckpointError(
            f"--out {str(target)!r} is the checkpoint being calibrated; the original is kept, "
            "so write the calibrated one to another file"
        )
    return target
