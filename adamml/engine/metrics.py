"""Evaluation metrics: top-k accuracy, mAP, selection rate and GFLOPs (AdaMML Sec. 4.1).

Everything is computed from per-video results gathered over the whole split, so under DDP a
video is counted once (reference §9 counts `DistributedSampler` padding twice and averages
per-batch selection rates; both are fixed here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import ShapeError

__all__ = [
    "cross_entropy",
    "topk_accuracy",
    "average_precision",
    "mean_average_precision",
    "selection_rate",
    "to_multi_hot",
    "EvalResult",
    "summarize",
]


def to_multi_hot(target: Tensor, num_classes: int) -> Tensor:
    """``(N,)`` class indices or ``(N, K)`` multi-hot labels -> ``(N, K)`` float 0/1."""
    if target.dim() == 1:
        out = torch.zeros(target.shape[0], num_classes)
        out[torch.arange(target.shape[0]), target.long()] = 1.0
        return out
    if target.dim() == 2 and target.shape[1] == num_classes:
        return (target > 0).float()
    raise ShapeError(f"target must be (N,) or (N, {num_classes}); got {tuple(target.shape)}")


def topk_accuracy(logits: Tensor, target: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Top-k accuracy in percent; a video counts as correct if any of its positive classes is
    among the k highest logits (so multi-label data get a meaningful top-1).

    Args:
        logits: ``(N, K)``.
        target: ``(N,)`` class indices or ``(N, K)`` multi-hot.
        ks: the k values; k larger than K is clipped to K.

    Returns:
        ``{k: percent}``; 0.0 for every k when N is 0.

    Example:
        >>> topk_accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]), (1,))
        {1: 50.0}
    """
    n, k_all = logits.shape
    hot = to_multi_hot(target, k_all)
    out: dict[int, float] = {}
    order = logits.argsort(dim=1, descending=True)
    for k in ks:
        top = order[:, : min(k, k_all)]
        hit = hot.gather(1, top).amax(dim=1) if n else hot.new_zeros(0)
        out[k] = float(hit.sum()) * 100.0 / n if n else 0.0
    return out


def average_precision(scores: Tensor, positives: Tensor) -> float:
    """Non-interpolated average precision of one class: the mean, over the positives, of the
    precision at each positive's rank (ties ranked stably by input order).

    Returns:
        AP in [0, 1], or ``nan`` if there is no positive.

    Example:
        >>> average_precision(torch.tensor([0.9, 0.8, 0.1]), torch.tensor([1.0, 0.0, 1.0]))
        0.8333333333333333
    """
    pos = positives.float()
    n_pos = float(pos.sum())
    if n_pos == 0:
        return float("nan")
    order = torch.argsort(scores, descending=True, stable=True)
    hits = pos[order].double()
    precision_at = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    return float((precision_at * hits).sum() / n_pos)


def mean_average_precision(scores: Tensor, target: Tensor) -> float:
    """mAP in percent: per-class AP of the scores (softmax probabilities in the reference),
    averaged over the classes with at least one positive.

    Args:
        scores: ``(N, K)``.
        target: ``(N,)`` class indices or ``(N, K)`` multi-hot.
    """
    hot = to_multi_hot(target, scores.shape[1])
    aps = [average_precision(scores[:, k], hot[:, k]) for k in range(scores.shape[1])]
    valid = [a for a in aps if a == a]
    return 100.0 * float(np.mean(valid)) if valid else 0.0


def selection_rate(decisions: Tensor, modalities: Sequence[str]) -> dict[str, float]:
    """Percentage of all (video, segment) pairs that used each modality (AdaMML Sec. 4.1).

    Weighted by segments over the whole split, not a mean of batch means.

    Args:
        decisions: ``(N, S, M)`` 0/1.
        modalities: the M names.
    """
    if decisions.dim() != 3 or decisions.shape[2] != len(modalities):
        raise ShapeError(
            f"decisions must be (N, S, {len(modalities)}); got {tuple(decisions.shape)}"
        )
    if decisions.shape[0] * decisions.shape[1] == 0:
        return {m: 0.0 for m in modalities}
    rate = decisions.float().mean(dim=(0, 1)) * 100.0
    return {m: float(r) for m, r in zip(modalities, rate)}


@dataclass(frozen=True)
class EvalResult:
    """Per-video results of one evaluation, sorted by dataset index and deduplicated.

    Attributes:
        index: ``(N,)`` dataset indices.
        logits: ``(N, K)`` video logits.
        target: ``(N,)`` or ``(N, K)`` labels.
        decisions: ``(N, S, M)`` decisions.
        gflops: ``(N,)`` per-video cost.
        modalities: the M names.
    """

    index: Tensor
    logits: Tensor
    target: Tensor
    decisions: Tensor
    gflops: Tensor
    modalities: tuple[str, ...]

    @classmethod
    def from_parts(cls, parts: Mapping[str, Tensor], modalities: Sequence[str]) -> EvalResult:
        """The result from per-video tensors keyed by field name (``index``, ``logits``,
        ``target``, ``decisions``, ``gflops``; other keys are ignored)."""
        return cls(
            index=parts["index"],
            logits=parts["logits"],
            target=parts["target"],
            decisions=parts["decisions"],
            gflops=parts["gflops"],
            modalities=tuple(modalities),
        )

    def save_decisions(self, path: str) -> None:
        """Write the per-video decisions to an ``.npz`` (keys ``index``, ``decisions``
        (bool N x S x M), ``modalities``, ``prediction``, ``target``, ``gflops``)."""
        np.savez_compressed(
            path,
            index=self.index.numpy(),
            decisions=self.decisions.numpy().astype(bool),
            modalities=np.array(self.modalities),
            prediction=self.logits.argmax(1).numpy(),
            target=self.target.numpy(),
            gflops=self.gflops.numpy(),
        )


def cross_entropy(logits: Tensor, target: Tensor) -> float:
    """Mean cross-entropy in nats (a multi-hot target spread evenly over its classes); 0.0 for
    an empty split."""
    if logits.shape[0] == 0:
        return 0.0
    logp = torch.log_softmax(logits.double(), dim=1)
    hot = to_multi_hot(target, logits.shape[1]).double()
    hot = hot / hot.sum(1, keepdim=True).clamp_min(1.0)
    return float(-(hot * logp).sum(1).mean())


def summarize(result: EvalResult) -> dict[str, object]:
    """The metrics of ``metrics.json``: ``ce`` (mean cross-entropy, nats), ``top1``, ``top5``,
    ``mAP`` (percent),
    ``selection_rate`` ({modality: percent}), ``gflops`` (mean per video), ``num_videos``."""
    acc = topk_accuracy(result.logits, result.target, (1, 5))
    probs = torch.softmax(result.logits.double(), dim=1)
    return {
        "ce": cross_entropy(result.logits, result.target),
        "top1": acc[1],
        "top5": acc[5],
        "mAP": mean_average_precision(probs, result.target),
        "selection_rate": selection_rate(result.decisions, result.modalities),
        "gflops": float(result.gflops.double().mean()) if len(result.gflops) else 0.0,
        "num_videos": int(result.index.numel()),
    }
