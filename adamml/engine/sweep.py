"""The accuracy-vs-GFLOPs curve of one checkpoint, by sweeping its decision thresholds
(``adamml eval --sweep``; docs/calibration.md).

One calibration pass (`adamml.engine.calibrate.collect_calibration_data`) runs every segment
through every backbone once; each point of the curve is then a replay (no backbone runs again):
the thresholds that fit a budget (`solve_thresholds`), the decisions they give, the fused
prediction of the selected segments. Budgets are spread evenly from the lowest cost the
thresholds reach (the policy and what the rule never drops) to every modality everywhere.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .metrics import summarize
from .replay import (
    CalibrationData,
    collect_calibration_data,
    cost_range,
    fusion_gflops,
    replay,
    solve_thresholds,
)

__all__ = [
    "SweepPoint",
    "threshold_sweep",
    "write_sweep_csv",
    "read_run_metrics",
    "plot_sweep",
    "run_sweep",
]


@dataclass(frozen=True)
class SweepPoint:
    """One point of the curve: the thresholds and what they give on the swept videos.

    Attributes:
        scale: s in ``t = s * w``.
        thresholds: ``{modality: t_m}``.
        gflops: mean GMACs per video (paper convention).
        top1: top-1 accuracy, percent.
        mAP: mean average precision, percent.
        selection_rate: ``{modality: percent of segments}``.
    """

    scale: float
    thresholds: dict[str, float]
    gflops: float
    top1: float
    mAP: float
    selection_rate: dict[str, float]


def threshold_sweep(
    model: nn.Module, data: CalibrationData, *, points: int = 21, rule: str = "cost"
) -> list[SweepPoint]:
    """Replay ``points`` budgets evenly spaced between the cheapest and the dearest thresholds.

    Returns:
        The distinct points, by increasing GFLOPs.

    Raises:
        ConfigError: for fewer than 2 points or a bad rule.
    """
    if int(points) < 2:
        raise ConfigError(f"a sweep needs at least 2 points; got {points!r}")
    low, high = cost_range(model, data, rule=rule)
    out: dict[tuple[float, ...], SweepPoint] = {}
    for budget in torch.linspace(low, high, int(points)).tolist():
        # float steps must not push a budget below the floor
        t, s, _ = solve_thresholds(model, data, max(budget, low), rule=rule)
        key = tuple(round(v, 9) for v in t.tolist())
        if key in out:
            continue
        m = summarize(replay(model, data, t))
        out[key] = SweepPoint(
            scale=s,
            thresholds={name: float(v) for name, v in zip(model.policy.modalities, t.tolist())},
            gflops=float(m["gflops"]),
            top1=float(m["top1"]),
            mAP=float(m["mAP"]),
            selection_rate=dict(m["selection_rate"]),
        )
    return sorted(out.values(), key=lambda p: p.gflops)


def write_sweep_csv(points: Sequence[SweepPoint], path: str | Path) -> Path:
    """One row per point: ``scale, t_<m>..., gflops, top1, mAP, selection_<m>...``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(points[0].thresholds) if points else []
    rates = list(points[0].selection_rate) if points else []
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["scale", *(f"t_{m}" for m in names), "gflops", "top1", "mAP"]
            + [f"selection_{m}" for m in rates]
        )
        for p in points:
            writer.writerow(
                [f"{p.scale:.6g}", *(f"{p.thresholds[m]:.6g}" for m in names)]
                + [f"{p.gflops:.6g}", f"{p.top1:.4f}", f"{p.mAP:.4f}"]
                + [f"{p.selection_rate[m]:.2f}" for m in rates]
            )
    return path


def read_run_metrics(specs: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(label, metrics)`` of other runs: each spec is a run folder (its ``metrics.json``), a
    ``metrics.json`` file, or ``LABEL=PATH``; the label defaults to the run folder's name.

    Raises:
        ConfigError: for a missing file or metrics without ``gflops`` and ``top1``.
    """
    out = []
    for spec in specs:
        label, _, where = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = Path(where)
        if path.is_dir():
            path = path / "metrics.json"
        if not path.is_file():
            raise ConfigError(f"--compare {spec!r}: no metrics.json at {str(path)!r}")
        metrics = json.loads(path.read_text())
        if not {"gflops", "top1"} <= set(metrics):
            raise ConfigError(f"--compare {spec!r}: {str(path)!r} has no gflops and top1")
        out.append((label or path.parent.name, metrics))
    return out


def plot_sweep(
    points: Sequence[SweepPoint],
    path: str | Path,
    *,
    current: Mapping[str, Any] | None = None,
    others: Sequence[tuple[str, Mapping[str, Any]]] = (),
    fusion: float | None = None,
    title: str = "",
) -> Path:
    """Top-1 against GFLOPs: the sweep as a line, the checkpoint's own thresholds as a star,
    other runs (retrained with other cost weights) as labelled points, fusion's cost as a
    dotted line."""
    from .._pyplot import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(
        [p.gflops for p in points],
        [p.top1 for p in points],
        "o-",
        ms=3,
        label="one checkpoint, thresholds swept",
    )
    if current is not None:
        ax.plot(
            current["gflops"],
            current["top1"],
            "*",
            ms=14,
            color="black",
            label="the checkpoint as trained",
        )
    for label, m in others:
        ax.plot(m["gflops"], m["top1"], "s", ms=7, label=label)
    if fusion is not None:
        ax.axvline(fusion, ls=":", color="grey", label="weighted fusion's GFLOPs")
    ax.set_xlabel("GFLOPs per video (GMACs, paper convention)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title or "Accuracy against GFLOPs from one checkpoint")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def run_sweep(
    model: nn.Module,
    loader: Iterable[Any],
    out_dir: str | Path,
    *,
    points: int = 21,
    rule: str = "cost",
    current: Mapping[str, Any] | None = None,
    compare: Sequence[str] = (),
    show_progress: bool = False,
) -> tuple[Path, Path, list[SweepPoint]]:
    """Sweep ``model``'s thresholds on ``loader`` and write ``sweep.csv`` and ``sweep.png``.

    Args:
        model: an [`AdaMML`][adamml.model.AdaMML] model with a learned policy.
        loader: the evaluation batches.
        out_dir: where the two files go.
        points: budgets swept.
        rule: see `adamml.engine.calibrate.RULES`.
        current: the checkpoint's own metrics on the same videos (a star on the curve).
        compare: other runs' folders or ``metrics.json`` files (`read_run_metrics`).
        show_progress: a tqdm bar for the pass.

    Returns:
        ``(csv path, png path, points)``.
    """
    others = read_run_metrics(compare)
    data = collect_calibration_data(model, loader, show_progress=show_progress)
    swept = threshold_sweep(model, data, points=points, rule=rule)
    out = Path(out_dir)
    csv_path = write_sweep_csv(swept, out / "sweep.csv")
    png_path = plot_sweep(
        swept,
        out / "sweep.png",
        current=current,
        others=others,
        fusion=fusion_gflops(model, data.segments),
    )
    return csv_path, png_path, swept
