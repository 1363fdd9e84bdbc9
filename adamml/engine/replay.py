"""One pass over a validation set, then any decision thresholds replayed without running a
backbone again (the ground under `adamml.calibrate` and ``adamml eval --sweep``).

```
validation set --one pass, every segment through every backbone--> CalibrationData
    margins (N, S, M), recognition outputs {m: (N, S, K)}, policy features (N, S, J)
thresholds t --> decisions (the policy's decide() on the features, or margin > t)
             --> the selected segments' outputs through model.fusion, the decisions through
                 model.cost_table: what an evaluation with t would report
```

Thresholds move together as ``t = s * w``: ``w_m`` is modality m's share of the largest
recognition GMACs per segment (``"cost"``) or 1 (``"shared"``). With cost weights, "use iff
margin > s * w_m" keeps a (segment, modality) exactly when its margin per GMAC exceeds s, so
`solve_thresholds` drops decisions in order of least margin per unit of cost: the greedy answer
to "keep the most margin within the budget".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .evaluate import to_device
from .metrics import EvalResult
from .runlog import progress

__all__ = [
    "RULES",
    "CalibrationData",
    "collect_calibration_data",
    "fusion_gflops",
    "threshold_weights",
    "solve_thresholds",
    "cost_range",
    "replay",
    "run_pass",
    "thresholds_of",
]

RULES = ("cost", "shared")
"""How the per-modality thresholds move together: ``t_m = s * w_m`` with ``w_m`` the modality's
share of the most expensive one's GMACs (``"cost"``) or 1 for every modality (``"shared"``)."""


def thresholds_of(model: nn.Module) -> nn.Module:
    """The policy whose decision thresholds calibration sets (``model.policy``).

    Raises:
        ConfigError: if it has none (``random``, ``all`` or a policy without
            ``set_thresholds``).
    """
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
def run_pass(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    all_on: bool,
    device: str | torch.device | None = None,
    show_progress: bool = False,
    desc: str = "pass",
) -> dict[str, Any]:
    """One evaluation pass that also keeps the policy's margins and features.

    Args:
        model: an [`AdaMML`][adamml.model.AdaMML] model with a learned policy.
        loader: ``(index, inputs, target)`` or ``(inputs, target)`` batches.
        all_on: run every segment through every backbone and keep the router's outputs
            (``outputs``); otherwise the policy decides, as in `adamml.engine.evaluate`.
        device: where the inputs go (default: the model's).
        show_progress: a tqdm bar.
        desc: its label.

    Returns:
        ``{index, target, margins (N, S, M), logits, decisions, gflops, thresholds}``, plus
        ``features`` for a policy with ``features``/``decide`` and ``outputs`` with ``all_on``.

    Raises:
        ConfigError: for a policy without thresholds or logits, or an empty loader.
    """
    device = _device(model, device)
    policy = thresholds_of(model)
    replayable = callable(getattr(policy, "features", None)) and callable(
        getattr(policy, "decide", None)
    )
    parts: dict[str, list[Any]] = {}
    was_training = model.training
    model.eval()
    try:
        with _captured(model, outputs=all_on, features=replayable) as seen:
            batches = progress(_batches(loader), enabled=show_progress, desc=desc)
            for index, inputs, target in batches:
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
        model: an [`AdaMML`][adamml.model.AdaMML] model with a learned policy.
        loader: ``(index, inputs, target)`` batches (`adamml.engine.loaders.make_loader`) or
            ``(inputs, target)``.
        device: where the inputs go (default: the model's).
        show_progress: a tqdm bar.

    Raises:
        ConfigError: for a policy without thresholds or logits, or an empty loader.
    """
    run = run_pass(
        model, loader, all_on=True, device=device, show_progress=show_progress, desc="all on"
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
    policy = thresholds_of(model)
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
