"""``adamml demo``: AdaMML against its baselines on SyntheticAV (AdaMML Table 1), from one config.

The demo is the library's default recipe applied to a plain config, as a user would write it
(model, classes, data, schedule, seed): `adamml.experiments.compare` trains AdaMML with its
pre-training stages, then weighted fusion and a random policy at AdaMML's cost from the same
pre-trained backbones. The unimodal rows are the recipe's own pre-training stages, evaluated on
the test split.

```
SyntheticAV (seed S)  train ─► AdaMML: pretrain rgb ──────► "RGB only" row
                      val   ─►         pretrain audio ────► "Audio only" row (and the policy's
  (model selection)                    pretrain policy.rgb   audio extractor)
                                       warm-up, joint, fine-tune ─► "AdaMML" row
                      test  ─► fusion (policy "all") from the pretrained backbones
  (the reported table)      ─► random (p = AdaMML's selection rates), same start
```
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.synthetic.source import syntheticav_source
from ..engine.config import plain_data
from ..engine.trainer import write_json
from ..errors import ConfigError
from .compare import compare
from .report import TableRow
from .report import format_table as _format_table

__all__ = [
    "DemoSettings",
    "METHODS",
    "run_demo",
    "format_table",
    "format_evidence",
    "selection_vs_evidence",
    "evaluate_checkpoint",
]

METHODS: tuple[str, ...] = ("unimodal_rgb", "unimodal_audio", "fusion", "random", "adamml")
"""The rows of the demo's table, in order."""

LABELS = {
    "unimodal_rgb": "RGB only",
    "unimodal_audio": "Audio only",
    "fusion": "Weighted fusion",
    "random": "Random policy",
    "adamml": "AdaMML",
}


@dataclass(frozen=True)
class DemoSettings:
    """What the demo's config names; everything else is the library's default recipe.

    Attributes:
        train_videos, val_videos, test_videos: SyntheticAV split sizes (different videos).
            ``val`` selects checkpoints, ``test`` gives the table.
        num_classes: K.
        warmup_epochs, joint_epochs, finetune_epochs: AdaMML's schedule (the baselines train
            for their sum).
        data_options: `SyntheticConfig` overrides (empty: SyntheticAV's defaults).
        threads: torch intra-op threads while the demo runs; ``None``: 1 when ``jobs`` is above
            1, else torch's default (one per core). The numbers depend on it (floating-point
            sums in another order), not on ``jobs``.
        jobs: independent runs side by side (`adamml.experiments.compare`'s ``jobs``: the
            pre-training stages, and weighted fusion beside AdaMML's joint stages), each in a
            forked process with one torch thread; needs ``threads`` 1. ``None``: 2 on a machine
            with two or more cores when ``threads`` is ``None`` or 1, else 1. The demo's tiny
            networks gain 0.86-1.09x from a second thread and 1.86-2.04x from a second
            process (`benchmarks/jobs.py`).
    """

    train_videos: int = 300
    val_videos: int = 100
    test_videos: int = 300
    num_classes: int = 6
    warmup_epochs: int = 3
    joint_epochs: int = 8
    finetune_epochs: int = 3
    data_options: Mapping[str, Any] = field(default_factory=dict)
    threads: int | None = None
    jobs: int | None = None

    def execution(self) -> tuple[int | None, int]:
        """``(threads, jobs)`` as the demo runs them (``threads`` ``None``: torch's default).

        Raises:
            ConfigError: ``jobs`` above 1 with ``threads`` above 1.
        """
        from ..engine.workers import available_cores, check_jobs

        jobs = self.jobs
        if jobs is None:
            jobs = min(2, available_cores()) if self.threads in (None, 1) else 1
        jobs = check_jobs(jobs)
        if jobs > 1 and self.threads not in (None, 1):
            raise ConfigError(
                f"jobs={jobs} runs every run with one torch thread; threads={self.threads} "
                "needs jobs=1"
            )
        return (1 if jobs > 1 else self.threads), jobs

    def source(self, n: int, split: str) -> str:
        """The ``syntheticav:`` data source of one split."""
        return syntheticav_source(n, split, self.data_options)

    def config(self, seed: int) -> dict[str, Any]:
        """The plain config the demo trains AdaMML from."""
        return {
            "model": "test_adamml_rgb_audio",
            "num_classes": self.num_classes,
            "data": {
                "train": self.source(self.train_videos, "train"),
                "val": self.source(self.val_videos, "val"),
                "test": self.source(self.test_videos, "test"),
            },
            "schedule": {
                "warmup_epochs": self.warmup_epochs,
                "joint_epochs": self.joint_epochs,
                "finetune_epochs": self.finetune_epochs,
            },
            "seed": seed,
        }


def evaluate_checkpoint(
    checkpoint: str | Path, source: str, *, segments: int = 10, seed: int = 0, batch_size: int = 16
) -> dict[str, Any]:
    """The metrics of a training checkpoint on a data source (a manifest or ``syntheticav:``).

    Returns:
        ``metrics.json``-style metrics (`adamml.engine.metrics.summarize`).
    """
    from ..engine.distributed import DistInfo
    from ..engine.evaluate import evaluate, load_for_evaluation
    from ..engine.metrics import summarize

    model, loader = load_for_evaluation(
        checkpoint, source, segments=segments, seed=seed, batch_size=batch_size
    )
    return summarize(evaluate(model, loader, DistInfo()))


def format_table(metrics: Mapping[str, Mapping[str, Any]], *, title: str = "") -> str:
    """The demo's results laid out like AdaMML Table 1 (one row per method, savings against
    weighted fusion), with `adamml.experiments.report.format_table`."""
    rows = [TableRow(m, LABELS[m], baseline="fusion") for m in METHODS]
    return _format_table(rows, metrics, title=title)


def selection_vs_evidence(decisions: str | Path, dataset: Any) -> dict[str, dict[str, float]]:
    """How often a policy selected each modality where SyntheticAV's ground truth says the
    segment carries the class, and where it does not.

    Args:
        decisions: a run's ``decisions.npz`` (evaluation on ``dataset``).
        dataset: the evaluated SyntheticAV tensor dataset (its ``evidence`` is ``(V, S, 2)``:
            the fraction of the clip's frames that show the class, and whether the audio
            window hears it).

    Returns:
        ``{modality: {"with_evidence": %, "without_evidence": %}}`` for ``rgb`` and ``audio``;
        a perfect policy scores 100 and 0.
    """
    import numpy as np

    with np.load(decisions) as z:
        index, chosen = z["index"], z["decisions"].astype(bool)
        names = [str(m) for m in z["modalities"]]
    truth = dataset.evidence[torch.from_numpy(index)].numpy() > 0  # (N, S, 2)
    out: dict[str, dict[str, float]] = {}
    for k, m in enumerate(("rgb", "audio")):
        if m not in names:
            continue
        sel, ev = chosen[..., names.index(m)], truth[..., k]
        out[m] = {
            "with_evidence": round(100.0 * float(sel[ev].mean()), 2) if ev.any() else 0.0,
            "without_evidence": round(100.0 * float(sel[~ev].mean()), 2) if (~ev).any() else 0.0,
        }
    return out


def format_evidence(evidence: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """One line per method: selection rate on segments with and without the class's evidence."""
    lines = ["Selected on segments that carry the class / that do not (SyntheticAV ground truth):"]
    for method, per in evidence.items():
        parts = [
            f"{m} {v['with_evidence']:.0f}% / {v['without_evidence']:.0f}%" for m, v in per.items()
        ]
        lines.append(f"  {LABELS[method]:<15} " + ", ".join(parts))
    return "\n".join(lines)


def _entry(metrics: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("top1", "top5", "mAP", "selection_rate", "gflops", "num_videos")
    return {k: metrics[k] for k in keep}


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    settings: DemoSettings | None = None,
    show_progress: bool = True,
    echo: Callable[[str], None] | None = None,
    figures: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Train and compare AdaMML, weighted fusion, a random policy and the unimodal models.

    Args:
        out_dir: where to write ``metrics.json``, ``table.txt``, ``demo.json``,
            ``decisions.png``, ``accuracy_vs_gflops.png`` and one run folder per method.
        seed: seeds the data (SyntheticAV) and every run.
        settings: the [`DemoSettings`][adamml.experiments.demo.DemoSettings] (defaults if
            ``None``).
        show_progress: tqdm bars per pass (quiet anyway when stderr is not a TTY).
        echo: where progress lines and the table go (default: print to stdout).
        figures: draw the two PNG figures.
        **overrides: `DemoSettings` fields, e.g. ``train_videos=60, joint_epochs=1``.

    Returns:
        ``{method: {"top1", "top5", "mAP", "selection_rate", "gflops", "num_videos"}}``, as
        written to ``metrics.json``.

    Example:
        >>> metrics = run_demo("demo_out", seed=0)  # doctest: +SKIP
    """
    settings = dataclasses.replace(settings or DemoSettings(), **overrides)
    threads, jobs = settings.execution()
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(Path(out_dir), seed, settings, jobs, show_progress, echo, figures)
    finally:
        torch.set_num_threads(before)


def _run(
    out: Path,
    seed: int,
    settings: DemoSettings,
    jobs: int,
    show_progress: bool,
    echo: Callable[[str], None] | None,
    figures: bool,
) -> dict[str, Any]:
    say = echo or (lambda line: print(line, flush=True))
    out.mkdir(parents=True, exist_ok=True)
    if (out / "adamml" / "last.pt").exists():
        raise FileExistsError(
            f"{str(out)!r} already holds a demo run; choose another --out or remove it"
        )
    start = time.perf_counter()
    raw = settings.config(seed)
    say(
        f"SyntheticAV seed {seed}: {settings.train_videos} train / {settings.val_videos} val / "
        f"{settings.test_videos} test videos, {settings.num_classes} classes; AdaMML's plain "
        f"config, the default recipe ({torch.get_num_threads()} torch thread"
        f"{'s' * (torch.get_num_threads() != 1)}, {jobs} job{'s' * (jobs != 1)})"
    )
    comparison = compare(raw, out, show_progress=show_progress, echo=say, jobs=jobs)
    results = {m: _entry(comparison.metrics[m]) for m in ("fusion", "random", "adamml")}
    test = raw["data"]["test"]
    for stage, summary in (comparison.metrics["adamml"].get("pretrain") or {}).items():
        if stage in ("rgb", "audio"):
            folder = Path(summary["folder"])
            ckpt = folder / ("best.pt" if (folder / "best.pt").exists() else "last.pt")
            results[f"unimodal_{stage}"] = _entry(evaluate_checkpoint(ckpt, test, seed=seed))
    table = format_table(
        results,
        title=f"SyntheticAV, seed {seed}, {settings.test_videos} held-out videos, 10 segments",
    )
    say(table)
    from ..data.sources import build_dataset
    from ..zoo import create_model

    spec = create_model(raw["model"], num_classes=settings.num_classes).input_spec
    test_set = build_dataset(
        test, spec, train=False, num_classes=settings.num_classes, seed=seed, segments=10
    )
    evidence = {
        m: selection_vs_evidence(out / m / "decisions.npz", test_set) for m in ("adamml", "random")
    }
    say(format_evidence(evidence))
    (out / "table.txt").write_text(table + "\n")
    seconds = {k: round(v, 1) for k, v in comparison.seconds.items()}
    if figures:
        from .plots import plot_accuracy_vs_gflops, plot_decisions

        t0 = time.perf_counter()
        plot_accuracy_vs_gflops(results, out / "accuracy_vs_gflops.png", labels=LABELS)
        plot_decisions(
            out / "adamml" / "best.pt", test, settings.num_classes, seed, 10, out / "decisions.png"
        )
        seconds["figures"] = round(time.perf_counter() - t0, 1)
    seconds["total"] = round(time.perf_counter() - start, 1)
    say(f"total {seconds['total']:.1f} s; wrote {out / 'metrics.json'}")
    write_json(out / "metrics.json", results)
    write_json(
        out / "demo.json",
        {
            "seed": seed,
            "settings": plain_data(dataclasses.asdict(settings)),
            "config": raw,
            "random_policy_p": comparison.random_p,
            "selection_vs_evidence": evidence,
            "seconds": seconds,
        },
    )
    return results
