"""``adamml demo``: train AdaMML and its baselines on SyntheticAV and compare them (AdaMML Table 1).

Everything runs through the engine's real code path: each method is a
[`TrainConfig`][adamml.engine.config.TrainConfig] handed to a
[`Trainer`][adamml.engine.trainer.Trainer], on in-memory SyntheticAV splits
(``data.train: syntheticav:N``; see `adamml.engine.data.parse_syntheticav`):

```
SyntheticAV (seed S)  train split ──► unimodal_rgb ───┐ init router.backbones.<m>
                      val split   ──► unimodal_audio ─┤ (audio also inits the policy's audio
  (model selection)                   policy_rgb ─────┤  extractor; policy_rgb, an RGB classifier
                                                      │  with the policy's architecture, its RGB one)
                      test split                      ├─► fusion   (every modality, every segment)
  (the reported table)                                ├─► adamml   (warm-up, joint, fine-tune)
                                                      └─► random   (p = AdaMML's selection rates)
```

The random policy keeps each modality with probability equal to AdaMML's measured selection
rate of that modality (AdaMML Table 8, "Random (Train+Test)"), so it costs about the same
GFLOPs as AdaMML and differs only in *which* segments it looks at.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .config import TrainConfig
from .data import build_dataset
from .trainer import Trainer, write_json

__all__ = ["DemoSettings", "METHODS", "run_demo", "format_table", "format_evidence",
           "selection_vs_evidence"]

METHODS: tuple[str, ...] = ("unimodal_rgb", "unimodal_audio", "fusion", "random", "adamml")
"""The methods the demo trains, in training order (the unimodal models initialise the rest)."""

_MODELS = {"unimodal_rgb": "test_unimodal_rgb", "unimodal_audio": "test_unimodal_audio",
           "fusion": "test_fusion_rgb_audio", "random": "test_adamml_rgb_audio",
           "adamml": "test_adamml_rgb_audio", "policy_rgb": "test_unimodal_rgb"}
_LABELS = {"unimodal_rgb": "RGB only", "unimodal_audio": "Audio only",
           "fusion": "Weighted fusion", "random": "Random policy", "adamml": "AdaMML"}


@dataclass(frozen=True)
class DemoSettings:
    """The demo's defaults: the same for every seed (``adamml demo --seed S``).

    Attributes:
        train_videos, val_videos, test_videos: SyntheticAV split sizes (different videos:
            ``split`` is part of each video's random stream). ``val`` selects checkpoints,
            ``test`` gives the reported table.
        num_classes: K.
        segments_train, segments_eval: S in training and evaluation (5 and 10, as the paper).
        batch_size: global batch.
        unimodal_epochs: plain CE epochs of each unimodal model.
        warmup_epochs, joint_epochs, finetune_epochs: AdaMML's stages; fusion and random train
            for their sum (the paper's equal budget), from the same unimodal initialisation.
        unimodal_lr: SGD learning rate of the unimodal models.
        lr: SGD learning rate of the multimodal recognition networks.
        policy_lr: Adam learning rate of the policy.
        lr_schedule: per-stage schedule (``cosine``, ``multistep`` or ``constant``).
        cost_weights: lambda_k of the efficiency loss (AdaMML Eq. 4): the reference's 20:1
            ratio of RGB to audio (1.0 : 0.05), scaled down to 0.15 : 0.0075. At rgb 1.0 the
            tiny policy dropped RGB entirely within a joint epoch; at rgb 0.05-0.1 it fell
            back to selecting RGB nearly everywhere on some seeds; audio at 0.05 (a 3:1 ratio)
            made it skip audio that costs 2 % of RGB and lose accuracy.
        gamma: the efficiency loss's gamma.
        tau_start, tau_decay: Gumbel temperature at the start of joint training and its decay
            per joint epoch.
        finetune_from: AdaMML's fine-tuning start (``TrainConfig.finetune_from``).
        frozen_policy: decisions of AdaMML's frozen policy in recognition passes
            (``TrainConfig.frozen_policy``).
        data_options: `SyntheticConfig` overrides (empty: SyntheticAV's defaults).
        policy_pretrain_epochs: epochs of the RGB classifier whose feature extractor
            initialises the policy's RGB extractor (the paper starts the policy's MobileNetV2
            from ImageNet; 0 leaves it random). The audio extractor starts from the unimodal
            audio model, which has the same architecture.
        policy_pretrain_lr: its SGD learning rate.
        eval_every: validate every this many epochs (and at the end of each stage).
        threads: torch intra-op threads while the demo runs; ``None`` keeps torch's default
            (one per core), the fastest on an idle machine (two threads: 1.9x one, measured on
            2 cores). On a busy machine use 1: OpenMP threads that wait on each other made a
            tiny-model step up to 25x slower there.
    """

    train_videos: int = 600
    val_videos: int = 200
    test_videos: int = 400
    num_classes: int = 6
    segments_train: int = 5
    segments_eval: int = 10
    batch_size: int = 32
    unimodal_epochs: int = 20
    warmup_epochs: int = 3
    joint_epochs: int = 12
    finetune_epochs: int = 5
    unimodal_lr: float = 0.05
    lr: float = 0.01
    policy_lr: float = 0.001
    lr_schedule: str = "cosine"
    cost_weights: Mapping[str, float] = field(
        default_factory=lambda: {"rgb": 0.15, "audio": 0.0075})
    gamma: float = 10.0
    tau_start: float = 5.0
    tau_decay: float = 0.9
    finetune_from: str = "last"
    frozen_policy: str = "sample"
    data_options: Mapping[str, Any] = field(default_factory=dict)
    policy_pretrain_epochs: int = 20
    policy_pretrain_lr: float = 0.05
    eval_every: int = 1
    threads: int | None = None

    def source(self, n: int, split: str) -> str:
        """The ``syntheticav:`` data source of one split."""
        opts = "".join(f",{k}={v}" for k, v in sorted(self.data_options.items()))
        return f"syntheticav:{n},split={split}{opts}"


def _config(method: str, settings: DemoSettings, seed: int, init: Mapping[str, str],
            model_args: Mapping[str, Any] | None = None) -> TrainConfig:
    s = settings
    if method == "policy_rgb":
        epochs, lr = s.policy_pretrain_epochs, s.policy_pretrain_lr
    elif method.startswith("unimodal_"):
        epochs, lr = s.unimodal_epochs, s.unimodal_lr
    else:
        epochs, lr = s.warmup_epochs + s.joint_epochs + s.finetune_epochs, s.lr
    raw: dict[str, Any] = {
        "model": _MODELS[method],
        "num_classes": s.num_classes,
        "data": {"train": s.source(s.train_videos, "train"),
                 "val": s.source(s.val_videos, "val"),
                 "test": s.source(s.test_videos, "test"),
                 "segments_train": s.segments_train, "segments_eval": s.segments_eval},
        "schedule": {"warmup_epochs": s.warmup_epochs, "joint_epochs": s.joint_epochs,
                     "finetune_epochs": s.finetune_epochs,
                     "epochs": epochs},
        "loss": {"cost_weights": dict(s.cost_weights), "gamma": s.gamma},
        "model_args": dict(model_args or {}),
        "seed": seed,
        "batch_size": s.batch_size,
        "init": dict(init),
        "tau_start": s.tau_start,
        "tau_decay": s.tau_decay,
        "keep_checkpoints": 1,
        "eval_every": s.eval_every,
        "finetune_from": s.finetune_from,
        "frozen_policy": s.frozen_policy,
        "optim": {"lr": lr, "policy_lr": s.policy_lr,
                  "lr_schedule": s.lr_schedule},
    }
    return TrainConfig.from_dict(raw)


def format_table(metrics: Mapping[str, Mapping[str, Any]], *, title: str = "") -> str:
    """The demo's results laid out like AdaMML Table 1 (one row per method).

    Args:
        metrics: ``{method: metrics.json entry}``.
        title: an optional first line.
    """
    base = metrics.get("fusion", {}).get("gflops")
    head = (f"{'Method':<16} {'Top-1 (%)':>9} {'mAP (%)':>8} {'RGB sel. (%)':>12} "
            f"{'Audio sel. (%)':>14} {'GFLOPs':>9} {'vs fusion':>9}")
    lines = ([title] if title else []) + [head, "-" * len(head)]
    for method in METHODS:
        if method not in metrics:
            continue
        m = metrics[method]
        sel = m["selection_rate"]

        def rate(name: str) -> str:
            return f"{sel[name]:.1f}" if name in sel else "-"

        rel = f"{100.0 * m['gflops'] / base:.1f}%" if base else "-"
        lines.append(f"{_LABELS[method]:<16} {m['top1']:>9.2f} {m['mAP']:>8.2f} "
                     f"{rate('rgb'):>12} {rate('audio'):>14} {m['gflops']:>9.5f} {rel:>9}")
    return "\n".join(lines)


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
    truth = dataset.evidence[torch.from_numpy(index)].numpy() > 0   # (N, S, 2)
    out: dict[str, dict[str, float]] = {}
    for k, m in enumerate(("rgb", "audio")):
        if m not in names:
            continue
        sel, ev = chosen[..., names.index(m)], truth[..., k]
        out[m] = {"with_evidence": round(100.0 * float(sel[ev].mean()), 2) if ev.any() else 0.0,
                  "without_evidence": round(100.0 * float(sel[~ev].mean()), 2)
                  if (~ev).any() else 0.0}
    return out


def format_evidence(evidence: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """One line per method: selection rate on segments with and without the class's evidence."""
    lines = ["Selected on segments that carry the class / that do not (SyntheticAV ground truth):"]
    for method, per in evidence.items():
        parts = [f"{m} {v['with_evidence']:.0f}% / {v['without_evidence']:.0f}%"
                 for m, v in per.items()]
        lines.append(f"  {_LABELS[method]:<15} " + ", ".join(parts))
    return "\n".join(lines)


def _entry(metrics: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("top1", "top5", "mAP", "selection_rate", "gflops", "num_videos")
    return {k: metrics[k] for k in keep}


def run_demo(out_dir: str | Path, *, seed: int = 0, settings: DemoSettings | None = None,
             show_progress: bool = True, echo: Callable[[str], None] | None = None,
             figures: bool = True, **overrides: Any) -> dict[str, Any]:
    """Train and compare AdaMML, weighted fusion, a random policy and the unimodal models.

    Args:
        out_dir: where to write ``metrics.json``, ``table.txt``, ``decisions.png``,
            ``accuracy_vs_gflops.png`` and one run folder per method (checkpoints, logs).
        seed: seeds the data (SyntheticAV) and every run.
        settings: the [`DemoSettings`][adamml.engine.demo.DemoSettings] (defaults if ``None``).
        show_progress: tqdm bars per pass (quiet anyway when stderr is not a TTY).
        echo: where progress lines and the table go (default: print to stdout).
        figures: draw the two PNG figures.
        **overrides: `DemoSettings` fields, e.g. ``train_videos=60, joint_epochs=1``.

    Returns:
        ``{method: {"top1", "top5", "mAP", "selection_rate", "gflops", "num_videos"}}``, as
        written to ``metrics.json``; ``demo.json`` holds the settings, the random policy's keep
        probabilities and the wall time of each step.

    Example:
        >>> metrics = run_demo("demo_out", seed=0)  # doctest: +SKIP
        >>> metrics["adamml"]["gflops"] < metrics["fusion"]["gflops"]  # doctest: +SKIP
        True
    """
    settings = dataclasses.replace(settings or DemoSettings(), **overrides)
    threads = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    try:
        return _run(Path(out_dir), seed, settings, show_progress, echo, figures)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, seed: int, settings: DemoSettings, show_progress: bool,
         echo: Callable[[str], None] | None, figures: bool) -> dict[str, Any]:
    say = echo or (lambda line: print(line, flush=True))
    out.mkdir(parents=True, exist_ok=True)
    for method in METHODS:
        if (out / method / "last.pt").exists():
            raise FileExistsError(f"{str(out / method)!r} already holds a run; choose another "
                                  "--out or remove it")
    start = time.perf_counter()
    times: dict[str, float] = {}

    # Featurise the three splits once, with every modality; each run reuses them (cache).
    from ..models import create_model

    spec = create_model(_MODELS["adamml"], num_classes=settings.num_classes).input_spec
    t0 = time.perf_counter()
    for split, n, train in (("train", settings.train_videos, True),
                            ("val", settings.val_videos, False),
                            ("test", settings.test_videos, False)):
        build_dataset(settings.source(n, split), spec, train=train, num_classes=settings.num_classes,
                      seed=seed, segments=settings.segments_train if train
                      else settings.segments_eval)
    times["data"] = time.perf_counter() - t0
    say(f"SyntheticAV seed {seed}: {settings.train_videos} train / {settings.val_videos} val / "
        f"{settings.test_videos} test videos featurised in {times['data']:.1f} s")

    results: dict[str, dict[str, Any]] = {}
    init: dict[str, str] = {}          # recognition backbones <- unimodal models
    policy_init: dict[str, str] = {}   # the policy's feature extractors (AdaMML only)
    random_p: dict[str, float] = {}
    steps = ["unimodal_rgb", "unimodal_audio", "policy_rgb", "fusion", "adamml", "random"]
    if settings.policy_pretrain_epochs <= 0:
        steps.remove("policy_rgb")
    for method in steps:
        t0 = time.perf_counter()
        model_args: dict[str, Any] = {}
        if method == "random":
            # AdaMML Table 8: keep each modality as often as AdaMML selected it
            rates = results["adamml"]["selection_rate"]
            random_p = {m: round(rates[m] / 100.0, 4) for m in ("rgb", "audio")}
            model_args = {"policy": "random", "policy_args": {"p": random_p, "seed": seed}}
        elif method == "policy_rgb":
            model_args = {"backbones": {"rgb": "tiny_policy"}}
        if method.startswith("unimodal_") or method == "policy_rgb":
            method_init: dict[str, str] = {}
        else:
            method_init = {**init, **policy_init} if method == "adamml" else init
        cfg = _config(method, settings, seed, method_init, model_args)
        metrics = Trainer(cfg, out / method, show_progress=show_progress).run()
        times[method] = time.perf_counter() - t0
        if method.startswith("unimodal_"):
            init[method.split("_", 1)[1]] = str(out / method / "best.pt")
        if method == "unimodal_audio":  # the audio policy extractor has the same architecture
            policy_init["policy.audio"] = str(out / method / "best.pt")
        if method == "policy_rgb":
            policy_init["policy.rgb"] = str(out / method / "best.pt")
            say(f"{'policy RGB init':<15} top-1 {metrics['top1']:6.2f}%  (the policy's RGB "
                f"extractor trained as a classifier; {times[method]:.1f} s)")
            continue
        results[method] = _entry(metrics)
        say(f"{method:<15} top-1 {metrics['top1']:6.2f}%  GFLOPs {metrics['gflops']:.5f}  "
            f"({times[method]:.1f} s)")

    table = format_table(results, title=f"SyntheticAV, seed {seed}, {settings.test_videos} "
                         f"held-out videos, {settings.segments_eval} segments")
    say(table)
    test_set = build_dataset(settings.source(settings.test_videos, "test"), spec, train=False,
                             num_classes=settings.num_classes, seed=seed,
                             segments=settings.segments_eval)
    evidence = {method: selection_vs_evidence(out / method / "decisions.npz", test_set)
                for method in ("adamml", "random")}
    say(format_evidence(evidence))
    (out / "table.txt").write_text(table + "\n")
    if figures:
        from .demo_plots import plot_accuracy_vs_gflops, plot_decisions

        t0 = time.perf_counter()
        plot_accuracy_vs_gflops(results, out / "accuracy_vs_gflops.png", labels=_LABELS)
        plot_decisions(out / "adamml" / "best.pt", settings, seed, out / "decisions.png")
        times["figures"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - start
    say(f"total {times['total']:.1f} s; wrote {out / 'metrics.json'}")
    write_json(out / "metrics.json", results)
    write_json(out / "demo.json", {
        "seed": seed, "settings": _plain(dataclasses.asdict(settings)),
        "random_policy_p": random_p, "selection_vs_evidence": evidence,
        "seconds": {k: round(v, 2) for k, v in times.items()}})
    return results


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=dict))
