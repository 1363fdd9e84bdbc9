"""Deterministic evaluation over a split, gathered over ranks (AdaMML Sec. 4.1, reference §9).

``model.eval()`` makes the gate take the argmax (no Gumbel noise), BatchNorm use its running
statistics and the router run only the selected segments, so evaluating the same checkpoint
twice gives identical metrics. Each rank evaluates its share; per-video results travel with
their dataset indices and duplicates from `DistributedSampler` padding are dropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..data.sources import build_dataset
from .distributed import DistInfo, all_gather_objects, unwrap
from .instantiate import model_from_checkpoint
from .loaders import make_loader
from .metrics import EvalResult
from .runlog import progress

__all__ = ["evaluate", "to_device", "gather_unique", "checkpoint_dataset", "load_for_evaluation"]


def to_device(inputs: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Move every tensor input to ``device``; a segment source with a ``to`` method (e.g.
    `adamml.data.OnDemandFlow`) is told to return its tensors there; other values unchanged."""

    def move(v: Any) -> Any:
        if isinstance(v, Tensor):
            return v.to(device, non_blocking=True)
        if hasattr(v, "gather") and callable(getattr(v, "to", None)):
            return v.to(device)
        return v

    return {k: move(v) for k, v in inputs.items()}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    info: DistInfo,
    *,
    show_progress: bool = False,
    desc: str = "eval",
) -> EvalResult:
    """Run ``model`` in eval mode over ``loader`` and gather per-video results from all ranks.

    Args:
        model: an AdaMML-like model (DDP-wrapped or not).
        loader: yields ``(index, inputs, label)`` batches (see `make_loader`).
        info: the process's [`DistInfo`][adamml.engine.distributed.DistInfo].
        show_progress: draw a tqdm bar (rank 0 only).
        desc: the bar's label.

    Returns:
        An [`EvalResult`][adamml.engine.metrics.EvalResult] over the unique videos, sorted by
        index; the same on every rank.
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    parts: dict[str, list[Tensor]] = {
        "index": [],
        "logits": [],
        "target": [],
        "decisions": [],
        "gflops": [],
    }
    try:
        for index, inputs, target in progress(
            loader, enabled=show_progress and info.is_main, desc=desc
        ):
            out = net(to_device(inputs, info.device))
            parts["index"].append(torch.as_tensor(index).cpu())
            parts["logits"].append(out.logits.float().cpu())
            parts["target"].append(torch.as_tensor(target).cpu())
            parts["decisions"].append(out.decisions.float().cpu())
            parts["gflops"].append(out.gflops.double().cpu())
    finally:
        net.train(was_training)
    unique = gather_unique(parts, info)
    return EvalResult.from_parts(unique, net.modalities)


def gather_unique(parts: Mapping[str, list[Tensor]], info: DistInfo) -> dict[str, Tensor]:
    """Per-video tensors of every rank, concatenated, sorted by ``parts["index"]`` and with the
    videos `DistributedSampler` padded in twice kept once (the same on every rank)."""
    local = {k: torch.cat(v) if v else torch.empty(0) for k, v in parts.items()}
    gathered = all_gather_objects(local, info)
    merged = {k: torch.cat([g[k] for g in gathered if g[k].numel() or k == "index"]) for k in local}
    index = merged["index"].long()
    # keep the first occurrence of every index (DistributedSampler pads with repeats)
    order = torch.argsort(index, stable=True)
    sorted_index = index[order]
    first = torch.ones_like(sorted_index, dtype=torch.bool)
    first[1:] = sorted_index[1:] != sorted_index[:-1]
    keep = order[first]
    return {"index": index[keep], **{k: v[keep] for k, v in merged.items() if k != "index"}}


def checkpoint_dataset(
    source: str,
    model: nn.Module,
    ckpt: Mapping[str, Any],
    *,
    segments: int,
    seed: int | None = None,
    on_error: str = "raise",
    flow_dir: str | os.PathLike[str] | None = None,
    flow_method: str = "tvl1",
    flow_on_demand: bool = False,
) -> Any:
    """The evaluation dataset of a checkpoint's model over a data source.

    The model's ``input_spec``, the checkpoint's ``num_classes`` and evaluation sampling
    (``segments`` evenly spaced segments, centre crops): what ``adamml eval``, ``adamml
    calibrate`` and `load_for_evaluation` evaluate on.

    Args:
        source: a manifest or a data-source string (e.g. ``syntheticav:300,split=test``).
        model: the checkpoint's model.
        ckpt: the loaded checkpoint (``num_classes``, ``config``).
        segments: S per video.
        seed: the data source's seed; ``None`` takes the training config's.
        on_error: ``"raise"``, ``"skip"`` or ``"warn"`` for a bad file.
        flow_dir: stored flow from ``adamml extract flow``.
        flow_method: how flow is computed otherwise.
        flow_on_demand: flow only for the segments the policy selects.
    """
    if seed is None:
        seed = int(ckpt.get("config", {}).get("seed", 0))
    return build_dataset(
        source,
        model.input_spec,
        segments=segments,
        train=False,
        num_classes=int(ckpt["num_classes"]),
        seed=seed,
        on_error=on_error,
        flow_dir=flow_dir,
        flow_method=flow_method,
        flow_on_demand=flow_on_demand,
    )


def load_for_evaluation(
    checkpoint: str | os.PathLike[str],
    source: str,
    *,
    segments: int = 10,
    seed: int = 0,
    batch_size: int = 16,
) -> tuple[nn.Module, DataLoader]:
    """A training checkpoint's model and a loader over a data source's videos, in this process.

    The dataset has the model's ``input_spec``, the checkpoint's ``num_classes`` and evaluation
    sampling (``segments`` evenly spaced segments, centre crops); give both to `evaluate` with
    ``DistInfo()``. ``adamml eval`` builds the same with its distributed and flow options.

    Args:
        checkpoint: ``best.pt`` or ``last.pt`` of a training run.
        source: a manifest or a data-source string (e.g. ``syntheticav:300,split=test``).
        segments: S per video.
        seed: the data source's seed.
        batch_size: videos per batch.

    Returns:
        ``(model, loader)``; ``len(loader.dataset)`` is the number of videos.

    Raises:
        CheckpointError: for a checkpoint that cannot be loaded (see `model_from_checkpoint`).
        ConfigError: for a malformed data source or a missing manifest.

    Example:
        >>> model, loader = load_for_evaluation("run/best.pt", "syntheticav:30")  # doctest: +SKIP
        >>> result = evaluate(model, loader, DistInfo())  # doctest: +SKIP
    """
    model, ckpt = model_from_checkpoint(checkpoint)
    dataset = checkpoint_dataset(source, model, ckpt, segments=segments, seed=seed)
    loader, _ = make_loader(dataset, batch_size=batch_size, info=DistInfo(), train=False, seed=0)
    return model, loader
