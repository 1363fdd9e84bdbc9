"""AdaMML against weighted fusion and a random policy at matched cost, from one config.

```
config (an AdaMML model, no init) ──► adamml   pre-training stages, warm-up, joint, fine-tune
                                         │ pre-trained recognition backbones (init)
                                         ├──► fusion   same model, policy "all"
                                         ├──► random   same model, policy "random",
                                         │             p = AdaMML's selection rates
                                         └──► random_cost  (optional) policy "random",
                                                       one p = AdaMML's GFLOPs / fusion's
```

Every run is an ordinary [`Trainer`][adamml.engine.trainer.Trainer] run in its own folder. The
baselines start from the recognition backbones AdaMML's recipe pre-trained (the paper starts
weighted fusion from the unimodal networks too) and train for the sum of AdaMML's stages. The
random policy keeps each modality with AdaMML's measured selection rate (AdaMML Table 8,
"Random (Train+Test)"), so it costs about the same and differs only in *which* segments it
looks at. That is the stricter of two ways to match the cost: it also copies *how often* AdaMML
uses each modality, which is itself learned. The optional ``random_cost`` is the paper's random
policy (one keep probability for every modality, Table 8) with that probability set so that its
GFLOPs equal AdaMML's (``p = AdaMML's GFLOPs / fusion's``, the policy's own cost included, so the
baseline gets slightly more recognition budget than AdaMML).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.config import TrainConfig
from ..engine.trainer import Trainer
from ..engine.workers import check_jobs, in_background

__all__ = ["METHODS", "OPTIONAL_METHODS", "Comparison", "compare", "derived_config", "run_config"]

METHODS: tuple[str, ...] = ("adamml", "fusion", "random")
"""The methods of a comparison by default, in training order (the baselines need AdaMML's
results)."""

OPTIONAL_METHODS: tuple[str, ...] = ("random_cost",)
"""Methods `compare` also trains when asked (after fusion, whose GFLOPs they need)."""


@dataclass
class Comparison:
    """The results of `compare`.

    Attributes:
        metrics: ``{method: metrics.json of its run}``.
        folders: ``{method: run folder}``.
        random_p: the random policy's keep probability per modality.
        random_cost_p: ``random_cost``'s one keep probability (None when it did not run).
        seconds: wall time per method.
    """

    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    random_p: dict[str, float] = field(default_factory=dict)
    random_cost_p: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def relations(self) -> dict[str, float]:
        """AdaMML minus fusion (top-1 points), AdaMML's GFLOPs over fusion's, AdaMML minus
        random (points): the three numbers a comparison is judged by; plus AdaMML minus
        ``random_cost`` when that ran."""
        a, f, r = (self.metrics[m] for m in METHODS)
        out = {
            "adamml_minus_fusion": a["top1"] - f["top1"],
            "gflops_ratio": a["gflops"] / f["gflops"] if f["gflops"] else float("nan"),
            "adamml_minus_random": a["top1"] - r["top1"],
        }
        if "random_cost" in self.metrics:
            out["adamml_minus_random_cost"] = a["top1"] - self.metrics["random_cost"]["top1"]
        return out


def derived_config(
    raw: Mapping[str, Any],
    method: str,
    *,
    init: Mapping[str, str] = (),
    random_p: Mapping[str, float] | float | None = None,
) -> dict[str, Any]:
    """The config of ``method`` derived from AdaMML's raw config ``raw``.

    ``fusion``, ``random`` and ``random_cost`` replace the policy (``model_args.policy``;
    ``random_p`` is a keep probability per modality for ``random``, one number for
    ``random_cost``), take ``init``
    (AdaMML's pre-trained recognition backbones), drop ``loss.target_gflops`` (they have no
    policy to steer), and train one supervised stage as long as AdaMML's three stages together.
    """
    out = copy.deepcopy(dict(raw))
    if method == "adamml":
        return out
    args = dict(out.get("model_args") or {})
    args.pop("policy_args", None)
    if method == "fusion":
        args["policy"] = "all"
    elif method == "random":
        args["policy"] = "random"
        args["policy_args"] = {"p": dict(random_p or {}), "seed": int(out.get("seed", 0))}
    elif method == "random_cost":
        if not isinstance(random_p, (int, float)):
            raise ValueError(f"random_cost takes one keep probability; got {random_p!r}")
        args["policy"] = "random"
        args["policy_args"] = {"p": float(random_p), "seed": int(out.get("seed", 0))}
    else:
        known = ", ".join(METHODS + OPTIONAL_METHODS)
        raise ValueError(f"unknown method {method!r}; known: {known}")
    out["model_args"] = args
    loss = dict(out.get("loss") or {})
    if loss.pop("target_gflops", None) is not None:  # a baseline has no policy to steer
        out["loss"] = loss
    out["init"] = {**dict(init), **dict(out.get("init") or {})}
    schedule = dict(out.get("schedule") or {})
    schedule.pop("epochs", None)
    out["schedule"] = schedule
    return out


def run_config(
    raw: Mapping[str, Any],
    folder: str | Path,
    *,
    show_progress: bool = False,
    base_dir: str | Path | None = None,
    jobs: int = 1,
) -> tuple[dict[str, Any], float, bool]:
    """Train one raw config in ``folder``, resuming from its ``last.pt`` if it has one; every
    run of an experiment (a comparison's methods, a paper table's rows) goes through here.
    ``jobs``: see `Trainer` (pre-training stages side by side).

    Returns:
        ``(metrics, seconds, resumed)``.
    """
    start = time.perf_counter()
    trainer, resume = _trainer(raw, folder, show_progress, base_dir, jobs)
    return trainer.run(), time.perf_counter() - start, resume


def pretrain_config(
    raw: Mapping[str, Any], folder: str | Path, *, show_progress: bool = False
) -> dict[str, Any]:
    """Run only the pre-training stages of one raw config in ``folder`` (`Trainer.pretrain`),
    so that other runs can start from them before this run's main stages; `run_config` on the
    same folder later finds them done.

    Returns:
        ``{stage: {"top1", "mAP", "parts", "folder"}}``.
    """
    return _trainer(raw, folder, show_progress, None)[0].pretrain()


def _trainer(
    raw: Mapping[str, Any],
    folder: str | Path,
    show_progress: bool,
    base_dir: str | Path | None,
    jobs: int = 1,
) -> tuple[Trainer, bool]:
    folder = Path(folder)
    # a run stopped in its pre-training stages (or whose stages ran on their own,
    # `pretrain_config`) continues from them
    resume = (folder / "last.pt").exists() or (folder / "pretrain").is_dir()
    trainer = Trainer(
        TrainConfig.from_dict(dict(raw)),
        folder,
        resume=resume,
        base_dir=base_dir,
        show_progress=show_progress,
        jobs=jobs,
    )
    return trainer, resume


def _recognition_init(metrics: Mapping[str, Any], modalities: tuple[str, ...]) -> dict[str, str]:
    init: dict[str, str] = {}
    for stage in (metrics.get("pretrain") or {}).values():
        folder = Path(stage["folder"])
        best = folder / ("best.pt" if (folder / "best.pt").exists() else "last.pt")
        init.update({p: str(best) for p in stage["parts"] if p in modalities})
    return init


def compare(
    raw: Mapping[str, Any],
    out: str | Path,
    *,
    methods: tuple[str, ...] = METHODS,
    show_progress: bool = False,
    base_dir: str | Path | None = None,
    echo: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> Comparison:
    """Train AdaMML from ``raw`` (a config mapping, as in a YAML file), then the baselines.

    Args:
        raw: AdaMML's training config.
        out: one folder per method is made in it.
        methods: names from `METHODS` and `OPTIONAL_METHODS` (AdaMML always runs first;
            ``random_cost`` needs ``fusion``).
        show_progress: tqdm bars.
        base_dir: where relative manifest paths resolve (the config's folder).
        echo: a line per finished run (default: print).
        jobs: with 2 or more, AdaMML's pre-training stages run side by side and weighted
            fusion trains beside AdaMML's warm-up, joint and fine-tuning stages, in forked CPU
            processes with one torch thread each (`adamml.engine.workers`). Every run's numbers
            are those it gets with one thread wherever it ran.

    Returns:
        A [`Comparison`][adamml.experiments.compare.Comparison].
    """
    say = echo or (lambda line: print(line, flush=True))
    known = METHODS + OPTIONAL_METHODS
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {', '.join(known)}")
    if "random_cost" in methods and "fusion" not in methods:
        raise ValueError("random_cost needs fusion's GFLOPs: add 'fusion' to methods")
    jobs = check_jobs(jobs)
    out = Path(out)
    result = Comparison()

    def finish(method: str, metrics: dict[str, Any], seconds: float) -> None:
        result.metrics[method], result.folders[method] = metrics, out / method
        result.seconds[method] = seconds
        rates = ", ".join(f"{m} {r:.0f}%" for m, r in metrics["selection_rate"].items())
        say(
            f"{method:<8} top-1 {metrics['top1']:6.2f}%  GFLOPs {metrics['gflops']:.5f}  "
            f"({rates}; {seconds:.0f} s)"
        )

    start = time.perf_counter()
    trainer, _ = _trainer(raw, out / "adamml", show_progress, base_dir, jobs)
    beside = "fusion" in methods and jobs > 1
    # fusion needs only the pre-trained backbones: with jobs, it trains beside AdaMML's stages
    init = _recognition_init({"pretrain": trainer.pretrain()}, trainer.modalities)
    with in_background(
        "fusion",
        lambda: _timed(
            derived_config(raw, "fusion", init=init),
            out / "fusion",
            base_dir,
            show_progress and not beside,
        ),
        fork=beside,
    ) as fusion:
        adamml = trainer.run()
        adamml_seconds = time.perf_counter() - start
    finish("adamml", adamml, adamml_seconds)
    for method in [m for m in known if m in methods and m != "adamml"]:
        if method == "fusion":
            finish("fusion", *fusion.result())
            continue
        p: Mapping[str, float] | float
        if method == "random":
            result.random_p = {m: round(r / 100.0, 4) for m, r in adamml["selection_rate"].items()}
            p = result.random_p
        else:  # random_cost
            ratio = adamml["gflops"] / result.metrics["fusion"]["gflops"]
            result.random_cost_p = p = round(min(1.0, ratio), 4)
        finish(
            method,
            *_timed(
                derived_config(raw, method, init=init, random_p=p),
                out / method,
                base_dir,
                show_progress,
            ),
        )
    return result


def _timed(
    raw: Mapping[str, Any], folder: Path, base_dir: str | Path | None, show_progress: bool
) -> tuple[dict[str, Any], float]:
    metrics, seconds, _ = run_config(raw, folder, base_dir=base_dir, show_progress=show_progress)
    return metrics, seconds
