"""Online evaluation and prediction: the stream over each batch, early exit and its sweep.

`evaluate_stream` runs [`AdaMML.stream`][adamml.model.AdaMML.stream] over the segments of
every batch (what ``adamml eval --early-exit`` reports); `sweep_early_exit` turns one pass
without exit into the accuracy and GFLOPs of every threshold (``adamml eval --early-exit-sweep``): a
video's first ``n`` segments are processed the same whether or not it stops after them, so
the exit at a threshold is the first prefix whose running prediction is confident enough, and
its cost the cost of that prefix. `predict_stream` prints a video's running prediction while
it is decoded (``adamml predict --stream``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..errors import ConfigError
from ..streaming import EarlyExit, confidence, segment_of
from .distributed import DistInfo, unwrap
from .evaluate import gather_unique, to_device
from .metrics import EvalResult, summarize, topk_accuracy
from .predict import Prediction
from .runlog import progress

__all__ = [
    "DEFAULT_THRESHOLDS",
    "OnlineResult",
    "evaluate_stream",
    "early_exit_metrics",
    "sweep_early_exit",
    "write_sweep",
    "draw_sweep",
    "SegmentReport",
    "predict_stream",
]

DEFAULT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
"""Thresholds of ``adamml eval --early-exit-sweep`` without a list."""


@dataclass(frozen=True)
class OnlineResult:
    """Per-video results of a streamed evaluation.

    Attributes:
        result: the [`EvalResult`][adamml.engine.metrics.EvalResult] of the final predictions
            (decisions ``(N, S, M)`` are zeros after an early exit; ``gflops`` counts the
            segments used only).
        segments_used: ``(N,)`` segments each video used.
        running_logits: ``(N, S, K)`` the running prediction after each segment (repeated
            after an exit).
        running_gflops: ``(N, S)`` the cost after each segment.
    """

    result: EvalResult
    segments_used: Tensor
    running_logits: Tensor
    running_gflops: Tensor


@torch.no_grad()
def evaluate_stream(
    model: nn.Module,
    loader: DataLoader,
    info: DistInfo,
    *,
    early_exit: EarlyExit | None = None,
    show_progress: bool = False,
    desc: str = "eval (stream)",
) -> OnlineResult:
    """Evaluate ``model`` segment by segment over ``loader`` (its batches of whole videos fed to
    one stream per batch), stopping each video by ``early_exit``.

    Without ``early_exit`` the final predictions equal `adamml.engine.evaluate`'s (eval mode,
    deterministic decisions). With it a video stops once confident: the remaining segments
    never reach the policy or a network (on-demand flow is never computed for them), and its
    GFLOPs count the segments it used.

    Args:
        model: an AdaMML-like model (DDP-wrapped or not) that can stream.
        loader: yields ``(index, inputs, label)`` batches (`make_loader`).
        info: the process's `DistInfo`.
        early_exit: the exit rule, or ``None``.
        show_progress: a tqdm bar on rank 0.
        desc: its label.

    Returns:
        [`OnlineResult`][adamml.engine.online.OnlineResult] over the unique videos, sorted by
        index, the same on every rank.

    Raises:
        ConfigError: if the model cannot stream (see `AdaMML.stream`).
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    parts: dict[str, list[Tensor]] = {
        k: [] for k in ("index", "logits", "target", "decisions", "gflops", "segments", "rl", "rg")
    }
    try:
        for index, inputs, target in progress(
            loader, enabled=show_progress and info.is_main, desc=desc
        ):
            inputs = to_device(inputs, info.device)
            s = int(next(iter(inputs.values())).shape[1])
            stream = net.stream(early_exit=early_exit)
            logits, gflops = [], []
            for t in range(s):
                if not stream.done:
                    step = stream.step(segment_of(inputs, t))
                logits.append(step.logits.float().cpu())
                gflops.append(step.gflops.double().cpu())
            decisions = stream.decisions.float().cpu()
            pad = s - decisions.shape[1]  # segments never fed after every video stopped
            decisions = torch.nn.functional.pad(decisions, (0, 0, 0, pad))
            parts["index"].append(torch.as_tensor(index).cpu())
            parts["logits"].append(logits[-1])
            parts["target"].append(torch.as_tensor(target).cpu())
            parts["decisions"].append(decisions)
            parts["gflops"].append(gflops[-1])
            parts["segments"].append(stream.segments.cpu())
            parts["rl"].append(torch.stack(logits, dim=1))
            parts["rg"].append(torch.stack(gflops, dim=1))
    finally:
        net.train(was_training)
    unique = gather_unique(parts, info)
    result = EvalResult.from_parts(unique, net.modalities)
    return OnlineResult(result, unique["segments"].long(), unique["rl"], unique["rg"])


def early_exit_metrics(online: OnlineResult, early_exit: EarlyExit | None) -> dict[str, object]:
    """`summarize`'s metrics plus ``segments_used`` (mean per video), ``segments`` (S) and
    the ``early_exit`` settings (``None`` without).

    ``selection_rate`` is over all S segments of every video (a segment after an exit counts
    as using nothing), as ``gflops`` is."""
    metrics = summarize(online.result)
    used = online.segments_used.double()
    metrics["segments_used"] = float(used.mean()) if used.numel() else 0.0
    metrics["segments"] = int(online.running_logits.shape[1]) if used.numel() else 0
    metrics["early_exit"] = (
        None
        if early_exit is None
        else {
            "threshold": float(early_exit.threshold),
            "metric": early_exit.metric,
            "min_segments": int(early_exit.min_segments),
        }
    )
    return metrics


def sweep_early_exit(
    online: OnlineResult,
    thresholds: Sequence[float],
    *,
    metric: str = "prob",
    min_segments: int = 1,
) -> list[dict[str, float]]:
    """Accuracy and cost of an early exit at each threshold, from one pass without exit.

    Video ``b`` stops at the first ``n >= min_segments`` whose running prediction has
    ``confidence >= threshold`` (else after S); its prediction and GFLOPs are those after
    ``n`` segments, exactly what `evaluate_stream` with that `EarlyExit` gives.

    Args:
        online: `evaluate_stream` without early exit.
        thresholds: the thresholds, in [0, 1].
        metric: ``"prob"`` or ``"margin"``.
        min_segments: never stop before this many segments.

    Returns:
        One row per threshold, then one for the full video (``threshold`` None):
        ``{"threshold", "top1", "top5", "gflops", "segments_used"}``.

    Raises:
        ConfigError: for a bad threshold, metric or ``min_segments``, or a result that had an
            early exit already.
    """
    n, s, k = online.running_logits.shape
    if n and int(online.segments_used.min()) != s:
        raise ConfigError("sweep_early_exit needs a streamed evaluation without early exit")
    sure = confidence(online.running_logits.reshape(n * s, k), metric).reshape(n, s)
    target = online.result.target
    rows: list[dict[str, Any]] = []
    for threshold in [*thresholds, None]:
        if threshold is None:
            stop = torch.full((n,), s - 1, dtype=torch.long)
        else:
            rule = EarlyExit(float(threshold), metric, min_segments)
            ok = (sure >= rule.threshold) & (torch.arange(1, s + 1) >= rule.min_segments)
            ok[:, -1] = True  # the last segment ends the video anyway
            stop = ok.float().argmax(dim=1)  # the first segment that may stop
        rows_idx = torch.arange(n)
        logits = online.running_logits[rows_idx, stop]
        acc = topk_accuracy(logits, target, (1, 5)) if n else {1: 0.0, 5: 0.0}
        rows.append(
            {
                "threshold": threshold,
                "metric": metric,
                "min_segments": int(min_segments),
                "top1": acc[1],
                "top5": acc[5],
                "gflops": float(online.running_gflops[rows_idx, stop].mean()) if n else 0.0,
                "segments_used": float((stop + 1).double().mean()) if n else 0.0,
            }
        )
    return rows


def write_sweep(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """The sweep as CSV: ``threshold,metric,min_segments,top1,top5,gflops,segments_used``
    (``threshold`` empty on the full-video row)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["threshold", "metric", "min_segments", "top1", "top5", "gflops", "segments_used"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({f: "" if row[f] is None else row[f] for f in fields})
    return path


def draw_sweep(rows: Sequence[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """Accuracy (top-1) against GFLOPs per video, one point per threshold (labelled) and the
    full video as a star; a PNG."""
    from .._pyplot import pyplot, save_figure

    plt = pyplot()
    exits = [r for r in rows if r["threshold"] is not None]
    full = [r for r in rows if r["threshold"] is None]
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    ax.plot([r["gflops"] for r in exits], [r["top1"] for r in exits], "o-", label="early exit")
    for r in exits:
        ax.annotate(
            f"{r['threshold']:g}",
            (r["gflops"], r["top1"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=7,
        )
    for r in full:
        ax.plot([r["gflops"]], [r["top1"]], "*", markersize=12, label="whole video")
    metric = rows[0]["metric"] if rows else "prob"
    least = rows[0]["min_segments"] if rows else 1
    ax.margins(x=0.06, y=0.1)  # room for the threshold labels
    ax.set_xlabel("GFLOPs per video")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(
        title or f"early exit on the {metric} threshold (at least {least} segments)", fontsize=9
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


@dataclass(frozen=True)
class SegmentReport:
    """One line of ``adamml predict --stream``: what a segment used and the prediction so far.

    Attributes:
        index: the segment (0-based).
        frames: ``(first, last)`` frame index it read.
        used: the modalities selected for it.
        top: ``(class, probability)`` of the running prediction.
        gflops: the cost so far.
        stopped: the video stopped after this segment (early exit).
        confidence: the running prediction's confidence (the exit metric's).
    """

    index: int
    frames: tuple[int, int]
    used: tuple[str, ...]
    top: tuple[str, float]
    gflops: float
    stopped: bool
    confidence: float

    def format(self) -> str:
        used = ", ".join(self.used) if self.used else "(none)"
        line = (
            f"segment {self.index + 1} [frames {self.frames[0]}-{self.frames[1]}]: {used}  "
            f"-> {self.top[0]} {self.top[1] * 100:.1f}%  GFLOPs so far {self.gflops:.4g}"
        )
        return line + ("  (early exit)" if self.stopped else "")


def _name(names: Sequence[str], i: int) -> str:
    return names[i] if i < len(names) else str(i)


def predict_stream(
    model: nn.Module,
    source: str | Path | IO[bytes],
    *,
    segments: int = 10,
    segment_frames: int | None = None,
    early_exit: EarlyExit | None = None,
    topk: int = 5,
    classes: Sequence[str] | None = None,
    flow_method: str = "tvl1",
) -> Iterator[SegmentReport | Prediction]:
    """Decode ``source`` segment by segment (`adamml.data.SegmentReader`) and yield a
    [`SegmentReport`][adamml.engine.online.SegmentReport] after each segment, then the final
    [`Prediction`][adamml.engine.predict.Prediction] (the same as `predict_inputs` on the whole
    file when no early exit stops it). Decoding stops at an early exit.

    Args:
        model: an AdaMML model (put in eval mode).
        source: a video file or a readable binary stream (see `SegmentReader`).
        segments: S when the frame count is known.
        segment_frames: fixed windows instead (and when the frame count is unknown).
        early_exit: stop once confident.
        topk: classes in the final prediction.
        classes: class names.
        flow_method: how flow is computed (on demand).
    """
    from ..data.stream import SegmentReader

    model.eval()
    stream = model.stream(early_exit=early_exit)
    metric = early_exit.metric if early_exit is not None else "prob"
    names = list(classes or [])
    with SegmentReader(
        source, model, segments=segments, segment_frames=segment_frames, flow_method=flow_method
    ) as reader:
        for seg in reader:
            step = stream.step(seg.inputs)
            probs = torch.softmax(step.logits[0].double(), dim=0)
            best = int(probs.argmax())
            yield SegmentReport(
                index=seg.index,
                frames=seg.frames,
                used=tuple(m for m, d in zip(model.modalities, step.decisions[0]) if d > 0.5),
                top=(_name(names, best), float(probs[best])),
                gflops=float(step.gflops[0]),
                stopped=not bool(step.active[0]),
                confidence=float(confidence(step.logits[:1], metric)[0]),
            )
            if stream.done:
                break
    if stream.logits is None:
        raise ConfigError(f"{getattr(source, 'name', source)}: no segment could be made")
    probs = torch.softmax(stream.logits[0].double(), dim=0)
    values, idx = probs.topk(min(topk, probs.numel()))
    top = [(_name(names, i), v) for i, v in zip(idx.tolist(), values.tolist())]
    used = int(stream.segments[0])
    yield Prediction(
        top, stream.decisions[0, :used].cpu(), tuple(model.modalities), float(stream.gflops[0])
    )
