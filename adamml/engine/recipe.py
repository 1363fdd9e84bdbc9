"""The paper's recipe before warm-up: each part of a multimodal model pre-trained on its own.

AdaMML ("Training Details") starts the recognition networks from unimodal models trained on
the same data and the policy's feature extractors from ImageNet. Without that start, joint
training begins with weak, over-confident recognition networks; skipping every modality then
gives a lower cross-entropy than using them, and the straight-through gradient teaches the
policy to skip everything (docs/training.md, "Why the recipe"). `run_pretraining` runs the
start as stages of the same run:

```
out/pretrain/rgb/            unimodal classifier with the model's RGB backbone
out/pretrain/audio/          ... audio backbone
out/pretrain/policy.rgb/     the policy's RGB extractor + a classifier, on the policy's view
                             (policy.audio shares the audio backbone's architecture: reused)
out/                         warm-up, joint, fine-tune, from those weights
```

Each stage is an ordinary training run (checkpoints, logs, ``metrics.json``, resumable); a
stage whose ``metrics.json`` exists is done and is not run again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from .config import PretrainConfig, ScheduleConfig, TrainConfig

__all__ = ["part_model", "pretraining_plan", "run_pretraining", "PretrainStage", "PART_MODEL"]

PART_MODEL = "adamml.engine.recipe:part_model"
"""The model name of a pre-training stage (a ``module:factory`` name, so its checkpoints
rebuild with ``adamml eval`` like any other)."""


def part_model(
    num_classes: int,
    *,
    parent: str,
    part: str,
    parent_args: Mapping[str, Any] | None = None,
    teacher: str | None = None,
) -> nn.Module:
    """The model that pre-trains ``part`` of model ``parent``: a one-modality classifier, or,
    with ``teacher``, a `SegmentDistiller` of a policy part.

    Args:
        num_classes: K.
        parent: the multimodal model's name (as in a config's ``model``).
        part: one of the parent's `part_names` (``"rgb"``, ``"policy.rgb"``).
        parent_args: the parent's ``model_args``.
        teacher: a checkpoint of the recognition backbone the policy part decides for (a
            pre-training stage's); its weights are the teacher's.
    """
    from .instantiate import build_model, read_weights

    model = build_model(parent, num_classes, parent_args)
    if teacher is None:
        out = model.part_classifier(part, num_classes)
    else:
        teacher_part = model.teacher_of(part)
        model.load_part_state(
            teacher_part,
            read_weights(teacher, teacher_part),
            what=f"teacher checkpoint {teacher!r}",
        )
        out = model.part_distiller(part, num_classes)
    # rebuilding the part rebuilds the parent: its checkpoint needs the parent's plugins
    out.components = dict(getattr(model, "components", None) or {})
    return out


@dataclasses.dataclass(frozen=True)
class PretrainStage:
    """One pre-training stage.

    Attributes:
        name: the stage's folder under ``out/pretrain`` (the part it trains).
        parts: the parts its weights initialise (a shared architecture serves several).
        config: its training config.
        teacher: for a distilled policy part, the recognition part whose trained weights are
            the teacher (filled in when that part's weights exist).
    """

    name: str
    parts: tuple[str, ...]
    config: TrainConfig
    teacher: str | None = None


def pretraining_plan(
    cfg: TrainConfig, model: nn.Module, *, train_videos: int | None = None
) -> list[PretrainStage]:
    """The stages ``cfg`` asks for on ``model``: one per part that ``init`` does not give.
    ``train_videos`` (the training set's size) sets the length of ``pretrain.epochs: auto``
    (`stage_epochs`).

    Nothing for ``pretrain.mode: none``, for one-modality models without a policy extractor
    (a unimodal model is its own pre-training; LiteEval, one modality with a cheap extractor,
    gets its extractor's stage), or for models without parts. A policy extractor with the same
    architecture as a recognition backbone (the audio MobileNetV2 of AdaMML) shares that
    backbone's stage.
    """
    p = cfg.pretrain
    names = tuple(getattr(model, "part_names", ()))
    unimodal = len(getattr(model, "modalities", ())) < 2 and not getattr(
        model, "policy_part_names", ()
    )
    if p.mode == "none" or unimodal or not names:
        return []
    if not all(hasattr(model, a) for a in ("part_classifier", "part_architecture")):
        import warnings

        warnings.warn(
            f"pretrain: auto does nothing for {type(model).__name__}: it offers no "
            "part_classifier/part_architecture (see adamml.AdaMML); set "
            "pretrain: none or give init checkpoints",
            UserWarning,
            stacklevel=3,
        )
        return []
    policy_parts = set(getattr(model, "policy_part_names", ()))
    wanted = [n for n in names if n not in cfg.init and (p.policy or n not in policy_parts)]
    stages: list[tuple[str, list[str]]] = []
    for name in wanted:
        arch = model.part_architecture(name)
        same = next(
            (
                s
                for s in stages
                if _part_modality(model, s[0]) == _part_modality(model, name)
                and model.part_architecture(s[0]) == arch
            ),
            None,
        )
        if same is not None:
            same[1].append(name)
        else:
            stages.append((name, [name]))
    out = []
    for name, parts in stages:
        teacher = None
        if name in policy_parts and p.policy_target == "distill" and hasattr(model, "teacher_of"):
            teacher = model.teacher_of(name)
        config = _stage_config(cfg, name, p, train_videos)
        out.append(PretrainStage(name, tuple(parts), config, teacher))
    return out


def _part_modality(model: nn.Module, name: str) -> str:
    """What part ``name`` looks at (`adamml.AdaMML.part_modality`); a model without it names
    its parts by modality."""
    of = getattr(model, "part_modality", None)
    return of(name) if callable(of) else name


AUTO_EPOCHS = 20
"""``pretrain.epochs: auto`` on a training set of at least 500 optimiser steps' worth."""
AUTO_MIN_STEPS = 500
"""``pretrain.epochs: auto`` grows the epochs of a small training set to this many steps..."""
AUTO_MAX_EPOCHS = 50
"""...but to no more epochs than this (a tiny set is fitted long before)."""


def stage_epochs(
    epochs: int | str | None,
    schedule_total: int,
    train_videos: int | None = None,
    batch_size: int = 1,
) -> int:
    """The epochs of a pre-training stage for ``pretrain.epochs`` (`PretrainConfig.epochs`).

    ``"auto"`` gives `AUTO_EPOCHS`, or, where they would make fewer than `AUTO_MIN_STEPS`
    optimiser steps, as many as make that many, at most `AUTO_MAX_EPOCHS`: the number of steps,
    not of epochs, is what trains a network from scratch as far, and a small training set has
    few steps per epoch (``ceil(train_videos / batch_size)``; without ``train_videos``,
    `AUTO_EPOCHS`). An integer is used as given; ``None`` gives ``schedule_total``.

    Example:
        >>> [stage_epochs("auto", 14, n, 16) for n in (400, 240, 12)], stage_epochs(3, 14, 12, 16)
        ([20, 34, 50], 3)
    """
    if epochs is None:
        return schedule_total
    if epochs != "auto":
        return int(epochs)
    if not train_videos:
        return AUTO_EPOCHS
    steps_per_epoch = -(-train_videos // batch_size)
    wanted = -(-AUTO_MIN_STEPS // steps_per_epoch)
    return min(max(AUTO_EPOCHS, wanted), AUTO_MAX_EPOCHS)


def _stage_config(
    cfg: TrainConfig, part: str, p: PretrainConfig, train_videos: int | None
) -> TrainConfig:
    s = cfg.schedule
    total = s.warmup_epochs + s.joint_epochs + s.finetune_epochs
    epochs = stage_epochs(p.epochs, total, train_videos, cfg.batch_size)
    optim = dataclasses.replace(
        cfg.optim,
        lr=p.lr if p.lr is not None else cfg.optim.lr,
        optimizer=p.optimizer or cfg.optim.optimizer,
    )
    return dataclasses.replace(
        cfg,
        model=PART_MODEL,
        model_args={"parent": cfg.model, "parent_args": dict(cfg.model_args), "part": part},
        schedule=ScheduleConfig(epochs=epochs),
        optim=optim,
        loss=dataclasses.replace(cfg.loss, target_gflops=None),  # no policy to steer
        init={},
        pretrain=PretrainConfig(mode="none"),
        data=dataclasses.replace(cfg.data, test=None),
        keep_checkpoints=1,
        eval_every=p.eval_every,
    )


def run_pretraining(
    stages: list[PretrainStage],
    out: Path,
    *,
    resume: bool,
    run_stage: Callable[[PretrainStage, Path], Mapping[str, Any]],
    init: Mapping[str, str] | None = None,
    jobs: int = 1,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Run each stage (with ``resume``, a finished one is read back instead); return ``init``
    for the parts and a summary per stage.

    Args:
        stages: from `pretraining_plan`.
        out: the main run's folder; stage ``s`` runs in ``out/pretrain/<s.name>``.
        resume: continue unfinished stages and reuse finished ones (``--resume``).
        run_stage: trains one stage in its folder and returns its metrics (the trainer's).
        init: the run's own ``init`` (a teacher given there is used as it is).
        jobs: with more than 1, the stages that wait for no other stage (every stage but a
            distilled policy part's, whose teacher a stage trains) run side by side in that
            many forked CPU processes (`adamml.engine.workers`), in plan order; a stage's
            result does not depend on where it ran.

    Returns:
        ``({part: checkpoint}, {stage: {"top1", "mAP", "parts", "folder"}})``.
    """
    import json

    known = dict(init or {})
    result: dict[str, str] = {}
    summary: dict[str, Any] = {}
    ran: dict[str, Any] = {}
    if jobs > 1:
        from .workers import run_in_workers

        free = [
            s
            for s in stages
            if (s.teacher is None or s.teacher in known)
            and not (resume and (_folder(out, s) / "metrics.json").exists())
        ]
        if len(free) > 1:
            ran = run_in_workers(
                [
                    (s.name, lambda s=s: dict(run_stage(_with_teacher(s, known), _folder(out, s))))
                    for s in free
                ],
                jobs,
            )
    for stage in stages:
        folder = _folder(out, stage)
        stage = _with_teacher(stage, known)
        done = folder / "metrics.json"
        finished = resume and done.exists()
        if stage.name in ran:
            metrics = ran[stage.name]
        else:
            metrics = json.loads(done.read_text()) if finished else run_stage(stage, folder)
        best = folder / ("best.pt" if (folder / "best.pt").exists() else "last.pt")
        result.update({part: str(best) for part in stage.parts})
        known.update(result)
        summary[stage.name] = {
            "top1": metrics["top1"],
            "mAP": metrics["mAP"],
            "parts": list(stage.parts),
            "folder": str(folder),
            **({"teacher": stage.teacher} if stage.teacher else {}),
        }
    return result, summary


def _folder(out: Path, stage: PretrainStage) -> Path:
    return out / "pretrain" / stage.name


def _with_teacher(stage: PretrainStage, known: Mapping[str, str]) -> PretrainStage:
    """``stage`` with its teacher's checkpoint in its model arguments."""
    if stage.teacher is None:
        return stage
    args = dict(stage.config.model_args, teacher=known[stage.teacher])
    return dataclasses.replace(stage, config=dataclasses.replace(stage.config, model_args=args))
