"""Predict one video and draw which modality each segment used (in the spirit of AdaMML Fig. 3).

The figure has one column per segment: the middle frame of each visual modality and the audio
spectrogram, framed in green where the policy selected the modality and greyed out where it
skipped it. On-demand flow is drawn only where it was computed; a skipped flow segment, never
computed, is a blank "not computed" cell (drawing never computes flow).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._pyplot import pyplot, save_figure
from ..errors import ConfigError

__all__ = [
    "Prediction",
    "predict_inputs",
    "load_inputs",
    "draw_decisions",
    "draw_segment",
    "draw_placeholder",
]


@dataclass(frozen=True)
class Prediction:
    """Top classes and per-segment decisions of one video.

    Attributes:
        top: ``[(class name or index, probability), ...]``, best first.
        decisions: ``(S, M)`` 0/1.
        modalities: the M names.
        gflops: the video's cost.
    """

    top: list[tuple[str, float]]
    decisions: Tensor
    modalities: tuple[str, ...]
    gflops: float

    def format(self) -> str:
        """A human-readable report: top classes, then one line per segment."""
        lines = [
            f"{rank + 1}. {name}  {prob * 100:.1f}%" for rank, (name, prob) in enumerate(self.top)
        ]
        lines.append(f"GFLOPs: {self.gflops:.4g}")
        for s, row in enumerate(self.decisions.tolist()):
            used = [m for m, d in zip(self.modalities, row) if d > 0.5]
            lines.append(f"segment {s + 1}: {', '.join(used) if used else '(none)'}")
        return "\n".join(lines)


@torch.no_grad()
def predict_inputs(
    model: nn.Module,
    inputs: Mapping[str, Any],
    *,
    topk: int = 5,
    classes: Sequence[str] | None = None,
) -> Prediction:
    """Run ``model`` (in eval mode) on one video's inputs ``{m: (S, T, C, H, W)}``.

    A ``SegmentSource`` input (on-demand flow from `load_inputs`) is already a batch of one
    ``(1, S, T, C, H, W)``; the model asks it only for the segments its policy selected.
    """
    model.eval()
    out = model({m: x.unsqueeze(0) if isinstance(x, Tensor) else x for m, x in inputs.items()})
    probs = torch.softmax(out.logits[0].double(), dim=0)
    k = min(topk, probs.numel())
    values, idx = probs.topk(k)
    names = [classes[i] if classes and i < len(classes) else str(i) for i in idx.tolist()]
    return Prediction(
        list(zip(names, values.tolist())),
        out.decisions[0].cpu(),
        tuple(model.modalities),
        float(out.gflops[0]),
    )


def load_inputs(
    video: str,
    input_spec: Mapping[str, Any] | Any,
    segments: int,
    *,
    seed: int = 0,
    num_classes: int = 1,
    flow_dir: str | None = None,
    flow_method: str = "tvl1",
) -> dict[str, Any]:
    """One video's inputs for a model (or its ``input_spec``).

    ``video`` is a video file (decoded by `adamml.data.load_video_inputs`), a ``.pt`` file
    holding ``{modality: (S, T, C, H, W)}`` tensors, or one video of a data source,
    ``scheme:arg[,key=value...],index=I`` (item I of that source's evaluation dataset, e.g.
    ``synthetic:8,index=3``; see `adamml.data.sources`). Given the model, a video
    file's flow is on demand (an `OnDemandFlow` batch of one, computed only for the segments the
    policy selects), unless ``flow_dir`` holds its stored flow.

    Args:
        video: see above. The old ``synthetic:I`` (video I, no ``index=``) still works and
            warns; it is ``synthetic:I+1,index=I``.
        input_spec: the model, or ``model.input_spec`` (flow is then computed eagerly).
        segments: S.
        seed: seeds a synthetic source.
        num_classes: K of a synthetic source.
        flow_dir: stored flow from ``adamml extract flow`` (found by
            `adamml.data.find_flow_file`).
        flow_method: how flow is computed from frames otherwise.

    Returns:
        ``{m: (S, T, C, H, W)}`` tensors, or a ``(1, S, T, C, H, W)`` `OnDemandFlow` for flow.

    Raises:
        ConfigError: if the file does not exist or cannot be decoded, or the index is out of
            range.
    """
    spec = getattr(input_spec, "input_spec", input_spec)
    if not Path(video).is_file():
        from ..data.sources import parse_source

        scheme, arg, options = parse_source(video)
        if scheme != "manifest":
            return _source_video(
                video,
                scheme,
                arg,
                options,
                spec,
                segments,
                seed=seed,
                num_classes=num_classes,
                flow_method=flow_method,
            )
    path = Path(video)
    if not path.is_file():
        raise ConfigError(f"video {video!r} does not exist")
    if path.suffix == ".pt":
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict):
            raise ConfigError(f"{video!r} must hold a dict of tensors keyed by modality")
        return data
    from ..data import load_video_inputs

    batch = load_video_inputs(
        str(path), input_spec, segments=segments, flow_dir=flow_dir, flow_method=flow_method
    )  # type: ignore[arg-type]
    # one video: tensors without the batch dimension; a segment source stays a batch of one
    return {m: x[0] if isinstance(x, Tensor) else x for m, x in batch.items()}


def _source_video(
    video: str,
    scheme: str,
    arg: str,
    options: Mapping[str, Any],
    spec: Mapping[str, Any],
    segments: int,
    *,
    seed: int,
    num_classes: int,
    flow_method: str,
) -> dict[str, Any]:
    """Item ``index`` of a data source's evaluation dataset (see `load_inputs`)."""
    from ..data.sources import DATA_SOURCES, SourceRequest

    options = dict(options)
    if scheme == "synthetic" and "index" not in options:
        try:
            index = int(arg)
        except ValueError:
            raise ConfigError(
                f"{video!r} must be synthetic:N,index=I with integers N > I"
            ) from None
        warnings.warn(
            f"predict {video!r}: 'synthetic:I' is deprecated (synthetic:N means N "
            f"videos everywhere else); write 'synthetic:{index + 1},index={index}'",
            FutureWarning,
            stacklevel=3,
        )
        arg, options["index"] = str(index + 1), index
    index = options.pop("index", 0)
    if not isinstance(index, int) or index < 0:
        raise ConfigError(f"{video!r}: index must be a non-negative integer; got {index!r}")
    request = SourceRequest(spec, segments, False, num_classes, seed, flow_method=flow_method)
    dataset = DATA_SOURCES.get(scheme).open(arg, options, request)
    if index >= len(dataset):  # type: ignore[arg-type]
        raise ConfigError(f"{video!r}: index {index} is out of range for {len(dataset)} videos")  # type: ignore[arg-type]
    return dataset[index][0]


def _thumbnail(x: Tensor) -> Tensor:
    """``(T, C, H, W)`` -> an ``(H, W)`` or ``(H, W, 3)`` image in [0, 1] (middle frame)."""
    frame = x[x.shape[0] // 2].float()
    img = frame[:3].permute(1, 2, 0) if frame.shape[0] >= 3 else frame[0]
    lo, hi = img.min(), img.max()
    return (img - lo) / (hi - lo + 1e-8)


def draw_segment(
    ax: Any, x: Tensor, selected: bool, *, faded: float = 0.25, frame_width: float = 4.0
) -> None:
    """Draw one segment's input on a matplotlib axis: a frame (or the spectrogram), framed
    green when ``selected``, faded with a thin grey frame when skipped."""
    img = _thumbnail(x).numpy()
    ax.imshow(
        img,
        cmap="magma" if img.ndim == 2 else None,
        alpha=1.0 if selected else faded,
        aspect="auto",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor("limegreen" if selected else "lightgrey")
        spine.set_linewidth(frame_width if selected else 1)


def draw_placeholder(ax: Any, selected: bool, *, text: str = "not\ncomputed") -> None:
    """An empty cell for a segment whose input was never computed (skipped on-demand flow)."""
    ax.set_facecolor("whitesmoke")
    ax.text(
        0.5, 0.5, text, ha="center", va="center", fontsize=7, color="grey", transform=ax.transAxes
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor("limegreen" if selected else "lightgrey")
        spine.set_linewidth(4.0 if selected else 1)


def _segment_input(x: Any, s: int) -> Tensor | None:
    """Segment ``s`` of a ``(S, ...)`` tensor, or of a batch-of-one segment source if it was
    computed already (never computes)."""
    if isinstance(x, Tensor):
        return x[s]
    computed = getattr(x, "computed", None)
    return computed(0, s) if callable(computed) else None


def draw_decisions(inputs: Mapping[str, Any], pred: Prediction, path: str | Path) -> Path:
    """Save a figure: a row per modality, a column per segment; selected cells framed green,
    skipped cells greyed out. On-demand inputs are drawn where computed, else a placeholder."""
    plt = pyplot()
    mods = [m for m in pred.modalities if m in inputs]
    s = pred.decisions.shape[0]
    fig, axes = plt.subplots(len(mods), s, figsize=(1.6 * s, 1.7 * len(mods)), squeeze=False)
    for r, m in enumerate(mods):
        k = pred.modalities.index(m)
        for c in range(s):
            ax = axes[r][c]
            selected = bool(pred.decisions[c, k] > 0.5)
            x = _segment_input(inputs[m], c)
            if x is None:
                draw_placeholder(ax, selected)
            else:
                draw_segment(ax, x.cpu(), selected)
            if c == 0:
                ax.set_ylabel(m)
            if r == 0:
                ax.set_title(f"seg {c + 1}", fontsize=8)
    fig.suptitle(
        f"{pred.top[0][0]} ({pred.top[0][1] * 100:.1f}%), {pred.gflops:.3g} GFLOPs", fontsize=9
    )
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)
