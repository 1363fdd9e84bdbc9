"""The demo's figures: per-segment decisions (AdaMML Fig. 3) and accuracy against GFLOPs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._pyplot import pyplot
from ..data.sources import build_dataset
from ..engine.instantiate import model_from_checkpoint
from ..engine.predict import draw_segment, predict_inputs

__all__ = ["plot_accuracy_vs_gflops", "plot_decisions"]

_COLOURS = {
    "adamml": "tab:red",
    "fusion": "tab:blue",
    "random": "tab:grey",
    "unimodal_rgb": "tab:green",
    "unimodal_audio": "tab:orange",
}


def plot_accuracy_vs_gflops(
    results: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Scatter top-1 accuracy against GFLOPs per video, one point per method.

    Args:
        results: ``{method: metrics}`` with ``top1`` and ``gflops``.
        path: the PNG to write.
        labels: display name per method.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for method, m in results.items():
        name = (labels or {}).get(method, method)
        ax.scatter(
            m["gflops"],
            m["top1"],
            s=60,
            color=_COLOURS.get(method, "black"),
            marker="*" if method == "adamml" else "o",
            zorder=3,
        )
        ax.annotate(
            name, (m["gflops"], m["top1"]), textcoords="offset points", xytext=(6, -3), fontsize=8
        )
    ax.set_xlabel("GFLOPs per video (10 segments, tiny models)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("SyntheticAV: accuracy vs. cost", fontsize=10)
    ax.grid(alpha=0.3)
    ax.set_xlim(left=0, right=max(m["gflops"] for m in results.values()) * 1.35)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_decisions(
    checkpoint: str | Path,
    source: str,
    num_classes: int,
    seed: int,
    segments: int,
    path: str | Path,
    *,
    videos: int = 4,
) -> Path:
    """Draw AdaMML's decisions on a few held-out videos, in the spirit of AdaMML Fig. 3.

    Two rows per video (RGB middle frame, audio spectrogram), one column per segment: a green
    frame where the policy selected the modality, greyed out where it skipped it, and a yellow
    dot where the segment truly carries the class's evidence in that modality (SyntheticAV's
    ground truth).

    Args:
        checkpoint: the AdaMML run's ``best.pt``.
        source: the ``syntheticav:`` data source of the split to draw.
        num_classes: K.
        seed: the demo's seed (selects the data).
        segments: segments per video.
        path: the PNG to write.
        videos: how many test videos (the first ones of the split).
    """
    plt = pyplot()
    model, _ = model_from_checkpoint(checkpoint)
    ds = build_dataset(
        source, model.input_spec, train=False, num_classes=num_classes, seed=seed, segments=segments
    )
    base = getattr(ds, "dataset", ds)
    classes = list(getattr(base, "classes", None) or [])
    mods = tuple(model.modalities)
    n = min(videos, len(ds))
    s = segments
    fig, axes = plt.subplots(
        len(mods) * n, s, figsize=(1.05 * s, 1.1 * len(mods) * n + 0.4), squeeze=False
    )
    for v in range(n):
        inputs, label = ds[v]
        pred = predict_inputs(model, inputs, classes=classes)
        evidence = getattr(base, "evidence", None)
        truth = classes[label] if classes else str(label)
        for r, m in enumerate(mods):
            row = v * len(mods) + r
            k = mods.index(m)
            for c in range(s):
                ax = axes[row][c]
                draw_segment(
                    ax, inputs[m][c], bool(pred.decisions[c, k] > 0.5), faded=0.2, frame_width=3.5
                )
                if evidence is not None and bool(evidence[v, c, 0 if m != "audio" else 1] > 0.5):
                    ax.plot(
                        [0.88],
                        [0.12],
                        "o",
                        color="gold",
                        markeredgecolor="black",
                        markersize=5,
                        transform=ax.transAxes,
                    )
                if c == 0:
                    ax.set_ylabel(m, fontsize=8)
            if r == 0:
                ok = "correct" if pred.top[0][0] == truth else "wrong"
                axes[row][s // 2].set_title(
                    f"video {v}: true {truth}, predicted {pred.top[0][0]} ({ok}), "
                    f"{pred.gflops:.4f} GFLOPs",
                    fontsize=8,
                )
    fig.suptitle(
        "AdaMML decisions per segment (green frame: selected; dot: the class is really there)",
        fontsize=9,
    )
    fig.subplots_adjust(
        left=0.04,
        right=0.99,
        bottom=0.01,
        top=1 - 0.5 / fig.get_figheight(),
        wspace=0.05,
        hspace=0.35,
    )
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
