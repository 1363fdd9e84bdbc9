"""The paper-table harness: rows -> TrainConfig -> Trainer -> a paper-style table.

Each ``examples/tableN_*.py`` script describes its rows as `Run` objects and hands them to
`main` (through `cli`), which

1. builds one [`TrainConfig`][adamml.engine.config.TrainConfig] per row, full size (the paper's
   models, schedule and hyper-parameters, on ``--data-root`` manifests) or ``--mini`` (the
   ``test_*`` tiny models on built-in synthetic data, a tiny schedule), each part starting
   from ImageNet (full mode), random (``--mini``), a given file or Kinetics-400 weights
   (``--pretrained``, ``--init-k400``; `adamml.experiments.starts`) unless another row
   initialises it;
2. validates every config (``TrainConfig.from_dict`` plus the model, fusion, policy and backbone
   names against the registries) and writes it to ``OUT/configs/<row>.yaml``; ``--dry-run``
   prints them, with the weights each part starts from, and stops here;
3. trains the rows in order with the engine's Python API (``Trainer(cfg, OUT/<row>).run()``),
   unimodal rows first because they initialise the multimodal ones (``init``);
4. prints the table laid out like the paper's, with the paper's numbers beside ours, and writes
   ``OUT/<table>_results.json`` and ``OUT/<table>.txt``.

A row may instead evaluate an earlier row's checkpoint at other test segments (``evaluate_of``
with a ``data.segments_eval`` override: Table 4's AdaMML with 5 segments) or only quote a
published method (``quoted``: printed with the paper's numbers, never run).

Rows with the same key and the same config are reused (``OUT/<row>/metrics.json``), and a row
interrupted mid-training resumes from its ``last.pt``, so several tables can share one ``--out``
(the unimodal models are then trained once).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.synthetic.source import DISK_CACHE_ENV, syntheticav_source
from ..engine.config import LossConfig, OptimConfig, PretrainConfig, TrainConfig, plain_data
from ..engine.recipe import stage_epochs
from ..losses import REFERENCE_COST_WEIGHTS
from .report import MODALITY_LABELS as LABELS
from .report import format_table
from .starts import add_start_args, describe_starts, row_parts, start_weights

__all__ = [
    "Run",
    "Settings",
    "TableSpec",
    "COST_WEIGHTS",
    "FULL",
    "MINI",
    "MINI_FLOW_OPTIONS",
    "main",
    "cli",
    "unimodal_runs",
    "build_config",
    "validate",
    "run_rows",
    "shared_synthetic_inputs",
    "dataset_args",
    "chosen_spec",
]

# The reference README's efficiency-loss weights lambda_k (reference-implementation.md §5).
COST_WEIGHTS = REFERENCE_COST_WEIGHTS
GAMMA = 10.0

# Unimodal rows of the paper (Kinetics-Sounds, Tables 1-3 and 9): accuracy, GFLOPs per video.
PAPER_UNIMODAL_KS = {
    "rgb": (82.85, 141.36),
    "flow": (75.73, 163.39),
    "rgbdiff": (80.10, 179.12),
    "audio": (65.49, 3.82),
}


@dataclass(frozen=True)
class Run:
    """One row of a table: one training run (a `TableRow` with what to train).

    Attributes:
        key: the run's folder under ``--out`` (also its id in ``results.json``).
        label: the row's name in the printed table.
        model: the full-size registered model; ``--mini`` uses its ``test_`` twin.
        model_args: ``create_model`` overrides (backbones, policy, fusion, ...).
        init: ``{modality: key of the unimodal run}`` whose ``best.pt`` initialises that
            modality's backbone (AdaMML "Training Details": warm-up from unimodal models).
        cost_weights: lambda_k of the efficiency loss (AdaMML Eq. 4); ``None``: the model's.
        paper: the paper's ``(metric, GFLOPs)`` for this row (GFLOPs ``None`` where the paper
            gives none), or ``None``.
        group: a section of the table (Table 7's tasks, Table 9's lambda curve).
        baseline: the key of the row the GFLOPs saving is measured against.
        extra: anything else worth keeping in ``results.json`` (e.g. ``lambda_rgb``).
        overrides: training-config keys set on top of the mode's (sections merged key by key),
            e.g. ``{"loss": {"gamma": 0.0}}`` or ``{"tau_start": 0.5}`` (the ablations).
        evaluate_of: the key of an earlier row whose trained ``best.pt`` this row evaluates
            (at its own ``data.segments_eval``, an override) instead of training (Table 4:
            AdaMML tested with 5 segments).
        quoted: a published method that is not run: the row shows the paper's numbers only,
            marked as quoted (Table 4's FrameGlimpse, FastForward, AdaFrame, LiteEval).
    """

    key: str
    label: str
    model: str
    model_args: Mapping[str, Any] = field(default_factory=dict)
    init: Mapping[str, str] = field(default_factory=dict)
    cost_weights: Mapping[str, float] | None = None
    paper: tuple[float, float | None] | None = None
    group: str = ""
    baseline: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    evaluate_of: str | None = None
    quoted: bool = False

    @property
    def unimodal(self) -> bool:
        return self.model.startswith("unimodal_")


@dataclass(frozen=True)
class Settings:
    """Schedule and hyper-parameters of one mode (`FULL` or `MINI`); the defaults are the paper's.

    Attributes:
        segments_train, segments_eval: S in training and evaluation (paper: 5 and 10).
        batch_size: global batch (paper: 72).
        workers: DataLoader workers per process.
        device: ``cpu``, ``cuda`` or ``auto``.
        unimodal_segments_train: S when training a unimodal model (the reference's
            ``train_unimodal.py`` uses one clip per video).
        unimodal_epochs, unimodal_lr, unimodal_schedule, unimodal_milestones: unimodal
            pre-training (reference README: 60 epochs, lr 0.01, steps 20/40/50).
        warmup_epochs, joint_epochs, finetune_epochs: AdaMML's stages (5, 20, 10); the
            baselines without a learned policy train for their sum (the paper's equal budget).
        optimizer: the recognition networks' optimiser, unimodal rows included (paper: SGD).
        lr, policy_lr: SGD for recognition (0.001), Adam for the policy (0.01).
        cost_scale: a factor on every row's cost weights lambda_k (paper: 1; ``--mini``: the
            library's default 0.15, which keeps the tiny policy from dropping RGB at once).
        lr_schedule, milestones: per-stage learning-rate schedule (multistep 10/15).
        tau_start, tau_decay: Gumbel temperature (5.0, x0.965 per joint epoch).
        num_classes: K for synthetic data (full mode counts ``classes.txt``).
        train_videos, val_videos, test_videos: synthetic split sizes (mini only).
    """

    # segments per video
    segments_train: int = 5
    segments_eval: int = 10
    # the machine
    batch_size: int = 72
    workers: int = 8
    device: str = "auto"
    # unimodal pre-training (the rows that initialise the multimodal ones)
    unimodal_segments_train: int = 1
    unimodal_epochs: int = 60
    unimodal_lr: float = 0.01
    optimizer: str = "sgd"
    cost_scale: float = 1.0
    unimodal_schedule: str = "multistep"
    unimodal_milestones: tuple[int, ...] = (20, 40, 50)
    # AdaMML's stages, optimisers and Gumbel temperature
    warmup_epochs: int = 5
    joint_epochs: int = 20
    finetune_epochs: int = 10
    lr: float = 0.001
    policy_lr: float = 0.01
    lr_schedule: str = "multistep"
    milestones: tuple[int, ...] = (10, 15)
    tau_start: float = 5.0
    tau_decay: float = 0.965
    # synthetic data (mini mode)
    num_classes: int = 31
    train_videos: int = 0
    val_videos: int = 0
    test_videos: int = 0


FULL = Settings()
"""The paper's recipe (Sec. 4.1 "Training Details", appendix B; reference §6 README values)."""

# What ``--mini`` changes, by reason; each group is a set of `Settings` fields.
_MINI_MACHINE = {"batch_size": 16, "workers": 0, "device": "cpu"}
"""A laptop CPU: small batches, no DataLoader worker processes."""
_MINI_DATA = {"num_classes": 6, "train_videos": 300, "val_videos": 100, "test_videos": 300}
"""Built-in synthetic data of the ``test_*`` models' size, as ``adamml demo``'s."""
_MINI_UNIMODAL = {
    "unimodal_segments_train": 5,
    "unimodal_epochs": stage_epochs(
        PretrainConfig.epochs, 0, _MINI_DATA["train_videos"], _MINI_MACHINE["batch_size"]
    ),
    "unimodal_lr": 0.003,
    "unimodal_schedule": "cosine",
    "unimodal_milestones": (),
}
"""Unimodal models as ``adamml train``'s pre-training stages train them (``pretrain.epochs:
auto``: 27 epochs of 300 videos, Adam at 0.003, cosine), 5 segments per video as the multimodal
runs."""
_MINI_STAGES = {"warmup_epochs": 3, "joint_epochs": 8, "finetune_epochs": 3}
"""AdaMML's three stages, as ``adamml demo`` runs them."""
_MINI_OPTIMISER = {
    "optimizer": OptimConfig.optimizer,
    "lr": OptimConfig.lr,
    "policy_lr": OptimConfig.policy_lr,
    "lr_schedule": OptimConfig.lr_schedule,
    "milestones": (),
    "tau_decay": TrainConfig.tau_decay,
    "cost_scale": LossConfig.cost_scale,
}
"""The library's defaults for training from pre-trained parts, read from `TrainConfig` (Adam at
3e-4, the policy's Adam at 3e-3, cosine, tau x0.9, cost weights x0.15), chosen on tiny models by
``benchmarks/robustness.py``; the paper's SGD at 0.01 and lambda_RGB = 1 made the tiny policy
collapse (docs/examples.md)."""

MINI = dataclasses.replace(
    FULL, **_MINI_MACHINE, **_MINI_UNIMODAL, **_MINI_STAGES, **_MINI_OPTIMISER, **_MINI_DATA
)
"""Minutes on a laptop CPU: tiny models on SyntheticAV, trained with the library's recipe for
tiny models (``adamml demo``'s), not the paper's hyper-parameters."""


@dataclass(frozen=True)
class TableSpec:
    """What one example script reproduces.

    Attributes:
        name: ``table1`` ... (the results' id).
        title: the paper table's caption, shortened.
        build: ``(args) -> rows``; ``args`` is the parsed command line.
        paper_data: the dataset of the paper's numbers (``Kinetics-Sounds``, ``ActivityNet``).
        paper_metric: ``Acc.`` or ``mAP``, the paper's metric column.
        select_metric: the default model-selection metric in full mode (``top1`` or ``mAP``).
        mini_data: ``syntheticav`` (SyntheticAV: per-segment evidence, rgb/rgbdiff/audio),
            ``syntheticav-flow`` (the same videos with flow by DIS on the rendered 64-px
            frames: the flow tables; see `MINI_FLOW_OPTIONS`) or ``synthetic`` (Gaussian class
            patterns in every modality and segment, so a policy has nothing to select).
        add_args: adds script-specific options to the parser.
        init_k400: the script takes ``--init-k400 DIR`` (Kinetics-400 starts of the unimodal
            rows; `adamml.experiments.starts`).
        notes: ``(args) -> text`` printed after the configs (``--dry-run``) and after the
            table (and written to ``OUT/<table>.txt``), e.g. Table 6's full-size GFLOPs.
    """

    name: str
    title: str
    build: Callable[[argparse.Namespace], list[Run]]
    paper_data: str = "Kinetics-Sounds"
    paper_metric: str = "Acc."
    select_metric: str = "top1"
    mini_data: str = "syntheticav"
    add_args: Callable[[argparse.ArgumentParser], None] | None = None
    init_k400: bool = False
    notes: Callable[[argparse.Namespace], str] | None = None


def unimodal_runs(
    modalities: Sequence[str],
    *,
    backbones: Mapping[str, str] | None = None,
    suffix: str = "",
    paper: Mapping[str, tuple[float, float]] | None = None,
    group: str = "",
) -> list[Run]:
    """The unimodal rows (and initialisations) for ``modalities``.

    Args:
        modalities: e.g. ``("rgb", "audio")``.
        backbones: ``{modality: backbone}`` overrides (Table 6).
        suffix: appended to the keys, so runs with other backbones get their own folder.
        paper: the paper's ``(metric, GFLOPs)`` per modality (default: Kinetics-Sounds).
        group: the rows' section of the table (Tables 4-5: they only initialise the others).
    """
    paper = PAPER_UNIMODAL_KS if paper is None else paper
    rows = []
    for m in modalities:
        args = {"backbones": {m: backbones[m]}} if backbones and m in backbones else {}
        rows.append(
            Run(
                f"unimodal_{m}{suffix}",
                f"{LABELS[m]}",
                f"unimodal_{m}",
                model_args=args,
                paper=paper.get(m),
                group=group,
            )
        )
    return rows


MINI_FLOW_OPTIONS: dict[str, dict[str, Any]] = {
    "syntheticav": {},
    "syntheticav-flow": {"flow_method": "dis", "flow_size": 64},
}
"""``syntheticav`` sources of ``--mini`` by `TableSpec.mini_data`: ``syntheticav-flow`` computes
flow with DIS on the 64-px frames as rendered (about 0.1 s a video, where TV-L1 at 256 px took
about a minute), so the flow tables' mini runs use SyntheticAV's per-segment evidence too."""

INIT_GROUP = "initialisation (not in the paper's table)"
"""The section of unimodal rows that a paper table does not list (Tables 4-5)."""


# -- configs ------------------------------------------------------------------------------------


def _data_section(spec: TableSpec, args: argparse.Namespace, s: Settings) -> dict[str, Any]:
    if args.mini:
        if spec.mini_data in MINI_FLOW_OPTIONS:
            opts = MINI_FLOW_OPTIONS[spec.mini_data]
            return {
                "train": syntheticav_source(s.train_videos, "train", opts),
                "val": syntheticav_source(s.val_videos, "val", opts),
                "test": syntheticav_source(s.test_videos, "test", opts),
            }
        # synthetic:N: every evaluation split shares its noise stream, so a separate test split
        # would contain the validation videos; report on val (the paper's Kinetics-Sounds
        # protocol also selects and reports on the same split).
        return {
            "train": f"synthetic:{s.train_videos}",
            "val": f"synthetic:{s.val_videos}",
            "test": None,
        }
    root = Path(args.data_root).resolve() if args.data_root else Path("DATA_ROOT")
    test = root / "test.csv"
    return {
        "train": str(root / "train.csv"),
        "val": str(root / "val.csv"),
        "test": str(test) if args.data_root and test.is_file() else None,
    }


def _num_classes(args: argparse.Namespace, s: Settings) -> int:
    if args.mini:
        return s.num_classes
    if args.num_classes:
        return int(args.num_classes)
    if args.data_root:
        classes = Path(args.data_root) / "classes.txt"
        if classes.is_file():
            from ..data.manifest import read_classes  # the manifests' own reader (# comments)

            return len(read_classes(classes))
        if not args.dry_run:
            raise SystemExit(
                f"error: {classes} does not exist; the manifests need a classes.txt "
                "beside them (or pass --num-classes)"
            )
    return s.num_classes


def build_config(run: Run, spec: TableSpec, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The raw training config (a YAML-able dict) of one row."""
    s = MINI if args.mini else FULL
    model = f"test_{run.model}" if args.mini else run.model
    # a unimodal row trains one supervised stage of unimodal_epochs; the others the three stages
    schedule = {
        "warmup_epochs": s.warmup_epochs,
        "joint_epochs": s.joint_epochs,
        "finetune_epochs": s.finetune_epochs,
        "epochs": s.unimodal_epochs if run.unimodal else None,
    }
    if run.unimodal:
        optim = {
            "optimizer": s.optimizer,
            "lr": s.unimodal_lr,
            "lr_schedule": s.unimodal_schedule,
            "milestones": list(s.unimodal_milestones),
        }
        seg_train = s.unimodal_segments_train
    else:
        optim = {
            "optimizer": s.optimizer,
            "lr": s.lr,
            "policy_lr": s.policy_lr,
            "lr_schedule": s.lr_schedule,
            "milestones": list(s.milestones),
        }
        seg_train = s.segments_train
    if not optim["milestones"]:
        del optim["milestones"]
    model_args = dict(run.model_args)
    if "pretrained" not in model_args:  # a row's own choice stands
        weights = start_weights(model, model_args, run.init, unimodal=run.unimodal, args=args)
        if weights:
            model_args["pretrained"] = weights
    raw: dict[str, Any] = {
        "model": model,
        "num_classes": _num_classes(args, s),
        "data": {
            **_data_section(spec, args, s),
            "segments_train": seg_train,
            "segments_eval": s.segments_eval,
        },
        "schedule": schedule,
        "loss": {
            "cost_weights": (
                {m: s.cost_scale * w for m, w in run.cost_weights.items()}
                if run.cost_weights
                else None
            ),
            "cost_scale": s.cost_scale,
            "gamma": GAMMA,
        },
        "model_args": plain_data(model_args),
        "seed": args.seed,
        "batch_size": s.batch_size,
        "workers": s.workers,
        "device": args.device or s.device,
        "init": {m: str(out / key / "best.pt") for m, key in run.init.items()},
        "tau_start": s.tau_start,
        "tau_decay": s.tau_decay,
        "select_metric": args.select_metric or spec.select_metric,
        "keep_checkpoints": 1 if args.mini else 2,
        "optim": optim,
    }
    for key, value in plain_data(run.overrides).items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


def validate(raw: Mapping[str, Any]) -> Any:
    """``TrainConfig.from_dict`` plus the names the config refers to (without building models).

    Raises:
        adamml.errors.AdamMLError: for a bad key or value, or an unknown name.
    """
    from .. import list_fusions, list_policies
    from ..backbones import resolve_backbone_name
    from ..engine import TrainConfig
    from ..errors import ConfigError
    from ..zoo import get_recipe

    cfg = TrainConfig.from_dict(raw)
    get_recipe(cfg.model)  # UnknownModelError with close matches
    args = cfg.model_args
    for key, known in (("fusion", list_fusions()), ("policy", list_policies())):
        name = args.get(key)
        if name is not None and name not in known:
            raise ConfigError(
                f"{raw['model']}: model_args.{key} {name!r} is not registered; "
                f"known: {', '.join(known)}"
            )
    for name in (args.get("backbones") or {}).values():
        resolve_backbone_name(name)  # UnknownBackboneError with close matches
    return cfg


# -- running ------------------------------------------------------------------------------------
def run_rows(
    rows: Sequence[Run],
    configs: Mapping[str, dict[str, Any]],
    out: Path,
    *,
    quiet: bool = False,
    jobs: int = 1,
) -> dict[str, dict[str, Any]]:
    """Train the rows in order (``Trainer(cfg, out/<key>).run()``), reusing finished runs of the
    same config and resuming interrupted ones.

    Rows with ``evaluate_of`` evaluate that earlier row's ``best.pt`` at their own
    ``segments_eval``; ``quoted`` rows are not run. With ``jobs`` above 1 the rows run side by
    side in that many forked one-thread CPU workers (`adamml.engine.workers.run_in_workers`),
    each as soon as its ``init`` and ``evaluate_of`` rows are done, the rows that others wait
    for first; a row's numbers are then those of one torch thread.

    Returns:
        ``{key: metrics.json of its run}``, in row order.
    """
    todo = [r for r in rows if not r.quoted]
    if jobs <= 1:
        return {r.key: _run_one(r, configs[r.key], out / r.key, quiet, out) for r in todo}
    from ..engine.workers import run_in_workers

    keys = {r.key for r in todo}
    rows_of = {r.key: {n.removeprefix(_PRE) for n in _needs(r)} for r in todo}
    waits = {k: sorted(v - keys) for k, v in rows_of.items() if v - keys}
    if waits:
        raise ValueError(f"rows wait for rows that are not in the table: {waits}")
    # a row's pre-training stages run as a task of their own: the rows that start from them
    # start once the stages are done, not once the whole row is, and stages that need no other
    # row (they train from the labels) run while the rows the rest waits for do
    early = {_needs_stages(v) for r in todo for v in r.init.values()} - {None}
    early |= {r.key for r in todo if _has_stages(r, configs[r.key])}
    tasks = [
        (_PRE + r.key, lambda r=r: _pretrain_one(r, configs[r.key], out / r.key))
        for r in todo
        if r.key in early
    ]
    tasks += [
        (r.key, lambda r=r: _run_one(r, configs[r.key], out / r.key, True, out)) for r in todo
    ]
    after = {_PRE + r.key: _stage_needs(r, configs[r.key]) for r in todo if r.key in early}
    after.update({r.key: _needs(r) | ({_PRE + r.key} if r.key in early else set()) for r in todo})
    done = run_in_workers(tasks, jobs, after=after)
    return {r.key: done[r.key] for r in todo}


_PRE = "pretraining stages of "


def _needs_stages(init_value: str) -> str | None:
    """The row whose pre-training stages an ``init`` value names (``adamml/pretrain/...``)."""
    parts = init_value.split("/")
    return parts[0] if len(parts) > 2 and parts[1] == "pretrain" else None


def _needs(run: Run) -> set[str]:
    """The tasks ``run`` waits for: the rows it starts from (an ``init`` value is a row's
    key) or evaluates, and the pre-training stages of a row whose stage folder it starts from
    (``adamml/pretrain/policy.rgb``)."""
    rows = {
        _PRE + stages if (stages := _needs_stages(key)) else key.split("/")[0]
        for key in run.init.values()
    }
    return rows | ({run.evaluate_of} if run.evaluate_of else set())


def _has_stages(run: Run, raw: Mapping[str, Any]) -> bool:
    """Whether ``run`` trains pre-training stages (`adamml.engine.recipe.pretraining_plan`): a
    model of several parts, not all given by ``init``, and ``pretrain`` not ``none``."""
    if run.unimodal or run.evaluate_of:
        return False
    cfg = TrainConfig.from_dict(dict(raw))
    if cfg.pretrain.mode == "none":
        return False
    rec, policy = row_parts(cfg.model, cfg.model_args)
    parts = (*rec, *policy) if cfg.pretrain.policy else rec
    return any(p not in cfg.init for p in parts)


def _stage_needs(run: Run, raw: Mapping[str, Any]) -> set[str]:
    """What ``run``'s pre-training stages wait for: nothing (they train from the labels and
    do not read the run's ``init``), or, for policy extractors distilled from the recognition
    backbones, the rows that train those."""
    distill = TrainConfig.from_dict(dict(raw)).pretrain.policy_target == "distill"
    return _needs(run) if distill else set()


def _pretrain_one(run: Run, raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The pre-training stages of ``run`` alone (`adamml.experiments.compare.pretrain_config`)."""
    from .compare import pretrain_config

    if not _prepare(folder, raw):
        return {}  # the whole row is done
    start = time.perf_counter()
    stages = pretrain_config(raw, folder)
    print(f"{run.key:<28} pre-training stages done ({time.perf_counter() - start:.0f} s)")
    return stages


def _prepare(folder: Path, raw: dict[str, Any]) -> bool:
    """Make ``folder`` hold ``raw``'s run; False when that run has finished (``metrics.json``).

    Raises:
        SystemExit: ``folder`` holds a run of another config.
    """
    saved = folder / "example_config.yaml"
    if saved.is_file():
        if yaml.safe_load(saved.read_text()) != raw:
            raise SystemExit(
                f"error: {folder} holds a run with another config ({saved}); "
                "choose another --out or remove that folder"
            )
        if (folder / "metrics.json").is_file():
            return False
    folder.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(raw, sort_keys=False))
    validate(raw)
    return True


def _run_one(run: Run, raw: dict[str, Any], folder: Path, quiet: bool, out: Path) -> dict[str, Any]:
    from .compare import run_config

    metrics_file = folder / "metrics.json"
    if not _prepare(folder, raw):
        print(f"{run.key:<28} reused {metrics_file}", flush=True)
        return json.loads(metrics_file.read_text())
    if run.evaluate_of:
        start = time.perf_counter()
        metrics = _evaluate_row(raw, out / run.evaluate_of)
        seconds, resumed = time.perf_counter() - start, False
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    else:
        metrics, seconds, resumed = run_config(raw, folder, show_progress=not quiet)
    print(
        f"{run.key:<28} top-1 {metrics['top1']:6.2f}%  mAP {metrics['mAP']:6.2f}%  "
        f"GFLOPs {metrics['gflops']:.5g}  ({seconds:.0f} s"
        f"{', resumed' if resumed else ''})",
        flush=True,
    )
    return metrics


def _evaluate_row(raw: Mapping[str, Any], trained: Path) -> dict[str, Any]:
    """The metrics of ``trained``'s checkpoint on the split its training reported on, with
    ``raw``'s evaluation segments (what ``adamml eval --segments`` gives)."""
    from ..engine.distributed import DistInfo
    from ..engine.evaluate import evaluate, load_for_evaluation
    from ..engine.metrics import summarize

    weights = "best" if (trained / "best.pt").is_file() else "last"
    data = raw["data"]
    split = data.get("test") or data.get("val") or data["train"]
    model, loader = load_for_evaluation(
        trained / f"{weights}.pt",
        split,
        segments=int(data["segments_eval"]),
        batch_size=int(raw["batch_size"]),
    )
    result = evaluate(model, loader, DistInfo())
    return {**summarize(result), "weights": weights, "split": split, "of": str(trained)}


def _parser(spec: TableSpec) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=f"AdaMML {spec.title}", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--mini",
        action="store_true",
        help="tiny test_* models on built-in synthetic data, minutes on a CPU",
    )
    p.add_argument(
        "--data-root", help="folder with train.csv, val.csv (test.csv) and classes.txt (full mode)"
    )
    p.add_argument("--out", help="output folder (one run folder per row, configs/, results.json)")
    p.add_argument(
        "--dry-run", action="store_true", help="build and validate the configs, print them and exit"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        help="override the mode's device (full: auto, mini: cpu)",
    )
    p.add_argument("--num-classes", type=int, help="K, if the data root has no classes.txt")
    p.add_argument(
        "--select-metric",
        choices=("top1", "mAP"),
        help=f"model selection metric (default {spec.select_metric}; mAP for ActivityNet)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="rows side by side in this many forked CPU processes of one torch thread each, "
        "as their starts allow (--mini on a multi-core CPU)",
    )
    add_start_args(p, k400=spec.init_k400)
    if spec.add_args:
        spec.add_args(p)
    return p


def main(spec: TableSpec, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the command line, build and validate the configs, run them, print the table.

    Returns:
        ``{"configs": {key: raw config}}`` after ``--dry-run``; otherwise the results as
        written to ``OUT/<table>_results.json``.
    """
    args = _parser(spec).parse_args(argv)
    if not args.mini and not args.dry_run and not args.data_root:
        raise SystemExit("error: full mode needs --data-root (or use --mini, or --dry-run)")
    if not args.dry_run and not args.out:
        raise SystemExit("error: --out is required (except with --dry-run)")
    out = Path(args.out) if args.out else Path("OUT")
    rows = spec.build(args)
    configs = {}
    for r in rows:
        if r.quoted:
            continue
        raw = build_config(r, spec, args, out)
        validate(raw)
        configs[r.key] = raw
    if args.out:
        (out / "configs").mkdir(parents=True, exist_ok=True)
        for key, raw in configs.items():
            (out / "configs" / f"{key}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    mode = "mini" if args.mini else "full"
    if args.dry_run:
        for key, raw in configs.items():
            print(f"# --- {key} ({mode})")
            print(f"# starts: {describe_starts(raw)}")
            print(yaml.safe_dump(raw, sort_keys=False), end="")
        print(f"# {len(configs)} configs valid ({spec.name}, {mode})")
        if spec.notes:
            print(spec.notes(args))
        return {"configs": configs}

    t0 = time.perf_counter()
    with shared_synthetic_inputs(out / ".syntheticav-cache"):
        metrics = run_rows(rows, configs, out, quiet=args.quiet, jobs=args.jobs)
    first = next(r.key for r in rows if not r.quoted)
    kind = (
        f"mini: tiny test_* models, synthetic data ({configs[first]['data']['train']})"
        if args.mini
        else f"full: {args.data_root}"
    )
    title = f"AdaMML {spec.title} [{kind}]"
    table = format_table(
        rows,
        metrics,
        title=title,
        paper_metric=spec.paper_metric,
        footer="Top-1, mAP and selection rates in %, GFLOPs per video (10 "
        f"segments unless the row says otherwise); paper columns: {spec.paper_data}, "
        "full-size models"
        + ("; (quoted): published numbers, not run here." if any(r.quoted for r in rows) else "."),
    )
    if spec.notes:
        table += "\n\n" + spec.notes(args)
    print(table)
    results = {
        "table": spec.name,
        "mode": mode,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": [
            {
                "key": r.key,
                "label": r.label,
                "group": r.group,
                "model": configs[r.key]["model"] if r.key in configs else None,
                "model_args": plain_data(r.model_args),
                "cost_weights": (
                    configs[r.key]["loss"]["cost_weights"] if r.key in configs else None
                ),
                "segments_eval": (
                    configs[r.key]["data"]["segments_eval"] if r.key in configs else None
                ),
                "quoted": r.quoted,
                "paper": (
                    {
                        spec.paper_metric: r.paper[0],
                        "gflops": r.paper[1],
                        "dataset": spec.paper_data,
                    }
                    if r.paper
                    else None
                ),
                "extra": plain_data(r.extra),
                "overrides": plain_data(r.overrides),
                "metrics": (
                    {
                        k: metrics[r.key][k]
                        for k in ("top1", "top5", "mAP", "selection_rate", "gflops", "num_videos")
                    }
                    if r.key in metrics
                    else None
                ),
            }
            for r in rows
        ],
    }
    (out / f"{spec.name}_results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{spec.name}.txt").write_text(table + "\n")
    print(f"wrote {out / (spec.name + '_results.json')} and {out / (spec.name + '.txt')}")
    return results


@contextmanager
def shared_synthetic_inputs(folder: Path) -> Iterator[None]:
    """Let the processes of a table (its ``--jobs`` workers, and a rerun after a crash) make
    each ``syntheticav:`` input once, kept in ``folder`` (`DISK_CACHE_ENV`), unless the
    environment names a folder already; the folder is removed once the rows have all run."""
    if os.environ.get(DISK_CACHE_ENV):
        yield
        return
    os.environ[DISK_CACHE_ENV] = str(folder)
    try:
        yield
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        del os.environ[DISK_CACHE_ENV]


def dataset_args(
    datasets: Iterable[str], default: str
) -> Callable[[argparse.ArgumentParser], None]:
    """A `TableSpec` ``add_args`` that adds ``--dataset`` (the paper columns printed, and what
    ``--data-root`` holds), for a table with one `TableSpec` per dataset (Tables 4-5)."""

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--dataset",
            choices=sorted(datasets),
            default=default,
            help="whose paper columns are printed (and what --data-root holds)",
        )

    return add


def chosen_spec(specs: Mapping[str, TableSpec], argv: Sequence[str]) -> TableSpec:
    """The spec of the ``--dataset`` in ``argv`` (`main` parses it again with the rest).

    Example:
        >>> cli(chosen_spec(SPECS, sys.argv[1:]))  # doctest: +SKIP
    """
    p = argparse.ArgumentParser(add_help=False)
    add_args = next(iter(specs.values())).add_args
    if add_args is not None:
        add_args(p)
    return specs[p.parse_known_args(list(argv))[0].dataset]


def cli(spec: TableSpec) -> None:
    """Entry point of a script: `main`, with adamml's errors as one line and exit status 1."""
    from ..errors import AdamMLError

    try:
        main(spec)
    except AdamMLError as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        raise SystemExit(1) from None
