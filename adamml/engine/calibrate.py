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

With w proportional to cost, "use iff margin > s * w_m" keeps a (segment, modality) exactly
when its margin per GMAC exceeds s: the decisions are dropped in order of least margin per unit
of cost, the greedy answer to "keep the most margin within the budget". Any thresholds are
replayed without running a backbone again: the cached outputs of the selected segments go
through the model's fusion, the decisions through its cost table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, ConfigError
from .evaluate import to_device
from .metrics import EvalResult, summarize
from .runlog import progress

__all__ = [
    "RULES",
    "CalibrationData",
    "CalibrationResult",
    "collect_calibration_data",
    "calibrate",
    "fusion_gflops",
    "threshold_weights",
    "solve_thresholds",
    "cost_range",
    "replay",
    "save_calibrated",
    "calibrated_path",
]

RULES = ("cost", "shared")
"""How the per-modality thresholds move together: ``t_m = s * w_m`` with ``w_m`` the modality's
share of the most expensive one's GMACs (``"cost"``) or 1 for every modality (``"shared"``)."""

_RESUME_ONLY = ("optimizers", "schedulers", "grad_scaler")


def _policy(model: nn.Module) -> nn.Module:
    policy = getattr(model, "policy", None)
    if policy is None or not callable(getattr(policy, "set_thresholds", None)):
        name = type(policy).__name__ if policy is not None else type(model).__name__
        raise ConfigError(
            f"calibration needs a learned policy with decision thresholds (lstm, fc, "
            f"joint_gate: set_thresholds); {name} has none"
        )
    return policy


@dataclass(frozen=True)
class CalibrationData:
    """What one pass over a validation set leaves for choosing thresholds.

    Attributes:
        modalities: the M names (decision order).
        index: ``(N,)`` dataset indices.
        target: ``(N,)`` labels or ``(N, K)`` multi-hot.
        margins: ``(N, S, M)`` ``logit_use - logit_skip`` of every segment, under
            ``thresholds``.
        thresholds: ``(M,)`` the thresholds the pass ran with.
        outputs: ``{m: (N, S, K or D)}`` every segment's recognition output.
        features: ``(N, S, J)`` the policy's joint features, replayed through
            ``policy.decide`` (exact for any policy that has one); ``None`` decides by margins.
    """

    modalities: tuple[str, ...]
    index: Tensor
    target: Tensor
    margins: Tensor
    thresholds: Tensor
    outputs: dict[str, Tensor] = field(repr=False)
    features: Tensor | None = field(default=None, repr=False)

    @property
    def segments(self) -> int:
        """S."""
        return int(self.margins.shape[1])


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


def fusion_gflops(model: nn.Module, segments: int) -> float:
    """GMACs per video of weighted fusion: every modality on every segment and no policy,
    ``S * sum_m recognition_m`` from the model's cost table (`adamml.flops`)."""
    return float(segments) * float(model.cost_table.recognition_total)


def threshold_weights(model: nn.Module, rule: str = "cost") -> Tensor:
    """``(M,)`` w in ``t = s * w``, in decision order (decision k gates ``model.modalities[k]``).

    Raises:
        ConfigError: for a rule not in `RULES`.
    """
    if rule not in RULES:
        raise ConfigError(f"rule must be one of {RULES}; got {rule!r}")
    names = tuple(model.modalities)
    if rule == "shared":
        return torch.ones(len(names))
    rec = torch.tensor([float(model.cost_table.recognition[m]) for m in names])
    return rec / rec.max() if float(rec.max()) > 0 else torch.ones(len(names))


# -- the calibration pass ----------------------------------------------------------------------
def _batches(loader: Iterable[Any]) -> Iterator[tuple[Tensor, dict[str, Any], Tensor]]:
    """``(index, inputs, target)`` from engine loaders, or ``(inputs, target)`` batches."""
    seen = 0
    for batch in loader:
        if len(batch) == 3:
            index, inputs, target = batch
        else:
            inputs, target = batch
            index = None
        target = torch.as_tensor(target)
        n = int(target.shape[0])
        index = torch.arange(seen, seen + n) if index is None else torch.as_tensor(index)
        seen += n
        yield index.cpu(), inputs, target.cpu()


def _batch_segments(inputs: Mapping[str, Any]) -> tuple[int, int]:
    for value in inputs.values():
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) >= 2:
            return int(shape[0]), int(shape[1])
    raise ConfigError("calibration inputs hold no (B, S, ...) tensor")


@contextmanager
def _captured(model: nn.Module, outputs: bool, features: bool) -> Iterator[dict[str, Any]]:
    """Forward hooks that keep the router's per-modality outputs and the policy's features."""
    seen: dict[str, Any] = {}
    handles = []
    if outputs:

        def keep_outputs(module: nn.Module, args: Any, out: Any) -> None:
            seen["outputs"] = {m: v.detach().float().cpu() for m, v in out.items()}

        handles.append(model.router.register_forward_hook(keep_outputs))
    if features:

        def keep_features(module: nn.Module, args: Any, out: Any) -> None:
            seen["features"] = module.features(args[0]).detach().float().cpu()

        handles.append(model.policy.register_forward_hook(keep_features))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def _run(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    all_on: bool,
    device: torch.device,
    show_progress: bool,
    desc: str,
) -> dict[str, Any]:
    """One pass: per-video results, margins and features; with ``all_on`` every segment runs
    every backbone and the router's outputs are kept."""
    policy = _policy(model)
    replayable = callable(getattr(policy, "features", None)) and callable(
        getattr(policy, "decide", None)
    )
    parts: dict[str, list[Any]] = {}
    was_training = model.training
    model.eval()
    try:
        with _captured(model, outputs=all_on, features=replayable) as seen:
            for index, inputs, target in progress(loader, enabled=show_progress, desc=desc):
                inputs = to_device(inputs, device)
                b, s = _batch_segments(inputs)
                forced = torch.ones(b, s, len(model.modalities), device=device) if all_on else None
                out = model(inputs, decisions=forced)
                if out.policy_logits is None:
                    raise ConfigError(
                        f"calibration needs policy logits; {type(policy).__name__} returns none"
                    )
                z = out.policy_logits.detach().float().cpu()
                found = {
                    "index": index,
                    "target": target,
                    "margins": z[..., 1] - z[..., 0],
                    "logits": out.logits.detach().float().cpu(),
                    "decisions": out.decisions.detach().float().cpu(),
                    "gflops": out.gflops.detach().double().cpu(),
                    **seen,
                }
                for key, value in found.items():
                    parts.setdefault(key, []).append(value)
    finally:
        model.train(was_training)
    if not parts:
        raise ConfigError("the calibration loader yielded no videos")
    merged: dict[str, Any] = {}
    for key, values in parts.items():
        if key == "outputs":
            merged[key] = {m: torch.cat([v[m] for v in values]) for m in values[0]}
        else:
            merged[key] = torch.cat(values)
    merged["thresholds"] = policy.thresholds.detach().float().cpu().clone()
    return merged


def _device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def collect_calibration_data(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    device: str | torch.device | None = None,
    show_progress: bool = False,
) -> CalibrationData:
    """Run ``model`` once over ``loader`` with every modality on every segment (weighted
    fusion's cost) and keep what any thresholds can be replayed from.

    Args:
        model: an [`AdaMML`][adamml.AdaMML] model with a learned policy.
        loader: ``(index, inputs, target)`` batches (`adamml.engine.loaders.make_loader`) or
            ``(inputs, target)``.
        device: where the inputs go (default: the model's).
        show_progress: a tqdm bar.

    Raises:
        ConfigError: for a policy without thresholds or logits, or an empty loader.
    """
    run = _run(
        model,
        loader,
        all_on=True,
        device=_device(model, device),
        show_progress=show_progress,
        desc="calibration pass",
    )
    return CalibrationData(
        modalities=tuple(model.modalities),
        index=run["index"],
        target=run["target"],
        margins=run["margins"],
        thresholds=run["thresholds"],
        outputs=run["outputs"],
        features=run.get("features"),
    )


# -- replaying thresholds ----------------------------------------------------------------------
@contextmanager
def _thresholds_set(policy: nn.Module, thresholds: Tensor) -> Iterator[None]:
    saved = policy.thresholds.detach().clone()
    policy.set_thresholds(thresholds)
    try:
        yield
    finally:
        policy.set_thresholds(saved)


@torch.no_grad()
def _decisions(model: nn.Module, data: CalibrationData, thresholds: Tensor) -> Tensor:
    """``(N, S, M)`` the decisions the policy takes under ``thresholds``."""
    if data.features is None:  # exact when thresholds change nothing the policy feeds back
        return (data.margins > thresholds).float()
    policy = _policy(model)
    device = policy.thresholds.device
    was_training = policy.training
    policy.eval()
    try:
        with _thresholds_set(policy, thresholds):
            chunks = [
                policy.decide(f.to(device)).decisions.float().cpu()
                for f in data.features.split(256)
            ]
    finally:
        policy.train(was_training)
    return torch.cat(chunks)


def _cost(model: nn.Module, decisions: Tensor) -> float:
    return float(model.cost_table.per_video(decisions).double().mean())


@torch.no_grad()
def replay(model: nn.Module, data: CalibrationData, thresholds: Tensor) -> EvalResult:
    """The evaluation ``thresholds`` would give on the calibration set, without running a
    backbone: the policy's decisions (replayed), the cached outputs of the selected segments
    through ``model.fusion``, the cost from ``model.cost_table``.

    Returns:
        An [`EvalResult`][adamml.engine.metrics.EvalResult] (`summarize` gives its metrics).
    """
    decisions = _decisions(model, data, thresholds)
    param = next(model.fusion.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    logits = []
    for rows in torch.arange(decisions.shape[0]).split(256):
        d = decisions[rows].to(device)
        per = {
            m: data.outputs[m][rows].to(device) * d[..., k : k + 1]
            for k, m in enumerate(model.modalities)
        }
        logits.append(model.fusion(per, d).mean(dim=1).float().cpu())
    return EvalResult(
        index=data.index,
        logits=torch.cat(logits),
        target=data.target,
        decisions=decisions,
        gflops=model.cost_table.per_video(decisions).double(),
        modalities=tuple(model.modalities),
    )


def _candidates(data: CalibrationData, weights: Tensor, wide: bool) -> Tensor:
    """Ascending values of s between which the margin rule's decisions change (the midpoints
    of the margins' breakpoints ``margin / w_m``), one below and one above all; ``wide`` adds a
    geometric tail each way for policies the margins do not describe exactly."""
    movable = weights > 0
    if not bool(movable.any()):
        return torch.zeros(1, dtype=torch.float64)
    points = (data.margins[..., movable] / weights[movable]).double().flatten()
    points = points[torch.isfinite(points)].unique()
    if points.numel() == 0:
        points = torch.zeros(1, dtype=torch.float64)
    span = max(1.0, float(points.abs().max()))
    tail = span * 2.0 ** torch.arange(0, 12 if wide else 1, dtype=torch.float64)
    low, high = points[0] - tail.flip(0), points[-1] + tail
    return torch.cat([low, (points[1:] + points[:-1]) / 2, high])


def _grid(model: nn.Module, data: CalibrationData, rule: str) -> tuple[Tensor, bool, Tensor]:
    """``(w, whether the margins decide exactly, the candidate values of s)``."""
    weights = threshold_weights(model, rule)
    exact = data.features is None or _is_per_modality(model)
    return weights, exact, _candidates(data, weights, wide=not exact)


def cost_range(
    model: nn.Module, data: CalibrationData, *, rule: str = "cost"
) -> tuple[float, float]:
    """``(lowest, highest)`` GFLOPs per video that thresholds ``s * w`` reach on ``data``: the
    policy and what the rule never drops, and every modality everywhere."""
    weights, _, grid = _grid(model, data, rule)
    return tuple(  # type: ignore[return-value]
        _cost(model, _decisions(model, data, float(grid[i]) * weights)) for i in (-1, 0)
    )


def solve_thresholds(
    model: nn.Module, data: CalibrationData, target_gflops: float, *, rule: str = "cost"
) -> tuple[Tensor, float, float]:
    """The thresholds ``t = s * w`` with the smallest s whose replayed cost is at most
    ``target_gflops``: the most computation the budget allows.

    The cost only changes where some ``margin / w_m`` crosses s, so the search is a binary
    search over those steps (exact for the per-modality gates); for a policy the margins do not
    describe (the joint gate) it then bisects between the two bracketing steps.

    Returns:
        ``(thresholds (M,), s, predicted GFLOPs per video)``.

    Raises:
        ConfigError: for a bad rule, or a target below the lowest cost the thresholds reach
            (the policy's own cost and what the rule never drops).
    """
    weights, exact, grid = _grid(model, data, rule)

    def cost(s: float) -> float:
        return _cost(model, _decisions(model, data, s * weights))

    lo, hi = 0, grid.numel() - 1
    floor = cost(float(grid[hi]))
    if floor > target_gflops:
        policy_cost = data.segments * float(model.cost_table.policy_total)
        raise ConfigError(
            f"target {target_gflops:.6g} GFLOPs is below the lowest cost these thresholds reach, "
            f"{floor:.6g} (the policy alone costs {policy_cost:.6g} per video); ask for more"
        )
    if cost(float(grid[0])) <= target_gflops:
        s = float(grid[0])
        return s * weights, s, cost(s)
    while hi - lo > 1:  # cost(grid[lo]) > target >= cost(grid[hi])
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if cost(float(grid[mid])) <= target_gflops else (mid, hi)
    a, b = float(grid[lo]), float(grid[hi])
    if not exact:
        for _ in range(40):
            mid = (a + b) / 2
            a, b = (a, mid) if cost(mid) <= target_gflops else (mid, b)
    return b * weights, b, cost(b)


def _is_per_modality(model: nn.Module) -> bool:
    """Whether the policy's decisions are its margins against the thresholds: one (skip, use)
    gate per modality, the raw logits fed back (`PolicyLSTM`, `PolicyFC`)."""
    from ..policies import JointGatePolicy, PolicyFC, PolicyLSTM

    policy = model.policy
    return isinstance(policy, (PolicyLSTM, PolicyFC)) and not isinstance(policy, JointGatePolicy)


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
        model: an [`AdaMML`][adamml.AdaMML] model with a learned policy (``lstm``, ``fc``,
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
        >>> result = adamml.calibrate(model, val_loader, 0.3 * adamml.fusion_gflops(model, 10))
        ... # doctest: +SKIP
        >>> result.gflops, result.metrics["top1"], result.thresholds  # doctest: +SKIP
    """
    target = float(target_gflops)
    if not math.isfinite(target) or target <= 0:
        raise ConfigError(f"target_gflops must be a number > 0; got {target_gflops!r}")
    if not 0 < float(tolerance) < 1:
        raise ConfigError(f"tolerance must be in (0, 1); got {tolerance!r}")
    policy = _policy(model)
    where = _device(model, device)
    data = collect_calibration_data(model, loader, device=where, show_progress=show_progress)
    passes = 0
    while True:
        thresholds, scale, predicted = solve_thresholds(model, data, target, rule=rule)
        policy.set_thresholds(thresholds)
        run = _run(
            model, loader, all_on=False, device=where, show_progress=show_progress, desc="check"
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
    return EvalResult(
        index=run["index"],
        logits=run["logits"],
        target=run["target"],
        decisions=run["decisions"],
        gflops=run["gflops"],
        modalities=tuple(model.modalities),
    )


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
