"""The training loop: runs the plan pass by pass, validates, selects, checkpoints, resumes.

Reproducibility contract: pass ``e`` seeds Python, NumPy and torch with ``seed + e`` and the
data order with the same number, and everything else that carries over between passes (weights,
BN statistics, the temperature buffer, optimiser and scheduler states, the best metric) is in
the checkpoint written after each pass. A run killed at any moment and resumed with ``--resume``
therefore ends with the same ``metrics.json`` as an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.sources import build_dataset
from ..errors import ConfigError
from ..losses import EfficiencyLoss
from ..policies.schedule import TemperatureSchedule
from .budget import CostController, batch_cost, check_target
from .checkpoint import (
    atomic_write_bytes,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum, barrier, unwrap, wrap_model
from .evaluate import evaluate, to_device
from .health import chance_ce, check_policy, warn
from .instantiate import (
    build_model,
    check_init_files,
    check_init_keys,
    load_backbone_init,
    load_state_strict,
    plugin_record,
)
from .loaders import make_loader
from .metrics import summarize
from .recipe import PretrainStage, pretraining_plan, run_pretraining
from .runlog import RunLogger, check_finite, progress
from .stages import (
    Pass,
    build_optimizers,
    build_plan,
    build_schedulers,
    current_lrs,
    has_learned_policy,
    set_trainable,
)
from .workers import check_jobs, in_worker

__all__ = ["Trainer", "seed_everything", "classification_loss"]

_SELECTABLE = ("joint", "finetune", "supervised", "unimodal")

_SCHEDULER_ORDER = r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def classification_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy (mean); a multi-hot ``(B, K)`` target is spread evenly over its classes."""
    if target.dim() == 2:
        soft = target.float() / target.float().sum(1, keepdim=True).clamp_min(1.0)
        return F.cross_entropy(logits, soft)
    return F.cross_entropy(logits, target.long())


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (sorted keys, so identical metrics give identical files)."""
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, lambda fh: fh.write(text.encode()))


class Trainer:
    """Train a model as ``cfg`` says, writing checkpoints, logs and ``metrics.json`` to ``out``.

    Args:
        cfg: the [`TrainConfig`][adamml.engine.config.TrainConfig].
        out: the run folder.
        info: this process's place in the process group (single process by default).
        resume: continue from ``out/last.pt`` if it exists.
        base_dir: folder relative manifest paths are resolved against.
        show_progress: tqdm bars on rank 0.
        sample_like: sample the data's clips as for these inputs (a superset of the model's):
            the run's pre-training stages get their model's ``input_spec``, so that a stage
            sees the frames and audio windows its model will see (see
            `adamml.data.transforms.sampling_of`); ``None``: as for the model's own inputs.
        jobs: run the independent pre-training stages side by side in this many forked CPU
            processes with one torch thread each (`adamml.engine.workers`; the stages' numbers
            are those of one thread wherever they run). 1 (default) runs them here, in order.

    Example:
        >>> metrics = Trainer(cfg, "runs/a").run()  # doctest: +SKIP
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out: str | Path,
        *,
        info: DistInfo | None = None,
        resume: bool = False,
        base_dir: str | Path | None = None,
        show_progress: bool = True,
        jobs: int = 1,
        sample_like: Mapping[str, Any] | None = None,
    ) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.sample_like = sample_like
        self.info = info or DistInfo()
        self.resume, self.base_dir, self.show_progress = resume, base_dir, show_progress
        if jobs != 1 and (self.info.world_size > 1 or self.info.device.type != "cpu"):
            raise ConfigError(
                f"jobs={jobs} runs pre-training stages in forked CPU processes of one machine; "
                f"on {self.info.device.type!r}"
                f"{' with torchrun' if self.info.world_size > 1 else ''} use jobs=1"
            )
        self.jobs = check_jobs(jobs)
        self._data: tuple[Any, Any] | None = None
        self._pretrained = False
        seed_everything(cfg.seed)
        self.model = build_model(cfg.model, cfg.num_classes, cfg.model_args).to(self.info.device)
        if hasattr(self.model, "set_precision"):
            self.model.set_precision(cfg.precision)
        if cfg.compile and hasattr(self.model, "configure_inference"):
            self.model.configure_inference(compile=True)
        # fp16 gradients underflow without loss scaling; bf16 and fp32 need none
        self.scaler = torch.amp.GradScaler(self.info.device.type, enabled=cfg.precision == "fp16")
        # init files that exist are loaded now; the others by run(), after the pre-training
        # stages, which do not read them (a table's row pre-trains while the runs that write
        # its init go on); run() checks that they exist before any stage
        check_init_keys(self.model, cfg.init)
        self._init_loaded = all(Path(path).is_file() for path in cfg.init.values())
        if cfg.init and self._init_loaded:
            load_backbone_init(self.model, cfg.init)
        self.plan = build_plan(cfg, self.model)
        self.modalities = tuple(self.model.modalities)
        self.tau = self._temperature_schedule()
        self.next_pass, self.step, self.best, self.best_joint = 0, 0, float("-inf"), float("-inf")
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.scheds: dict[str, Any] = {}
        self._stage: str | None = None
        self.eff_loss = self._efficiency_loss()
        self.budget = self._cost_controller()
        self.pretrain_summary: dict[str, Any] = {}
        self.collapse_warnings: list[str] = []
        self._warned: set[str] = set()
        # the policy passes start once recognition beats the uniform prediction (policy_start)
        self.policy_ready = cfg.policy_start == "immediate"
        self.last_ce: float | None = None

    # -- set-up ------------------------------------------------------------------------------
    def _temperature_schedule(self) -> Any:
        return TemperatureSchedule(self.cfg.tau_start, self.cfg.tau_decay, min_tau=self.cfg.tau_min)

    def _efficiency_loss(self) -> Any:
        loss = self.cfg.loss
        reference = getattr(self.model, "cost_weights", None) or {m: 1.0 for m in self.modalities}
        weights = loss.cost_weights or {m: loss.cost_scale * w for m, w in reference.items()}
        gamma = loss.gamma if loss.gamma is not None else getattr(self.model, "gamma", 10.0)
        return EfficiencyLoss(dict(weights), gamma=gamma, penalty=loss.penalty)

    def _cost_controller(self) -> CostController | None:
        """The scale on the cost weights that meets ``loss.target_gflops`` (None without one)."""
        loss = self.cfg.loss
        if loss.target_gflops is None:
            return None
        check_target(
            loss.target_gflops,
            self.model,
            self.cfg.data.segments_eval,
            has_policy=has_learned_policy(self.model),
        )
        if not any(w > 0 for w in self.eff_loss.cost_weights.values()):
            raise ConfigError(
                "loss.target_gflops scales the cost weights, but they are all 0 "
                f"({self.eff_loss.cost_weights}); give positive loss.cost_weights"
            )
        return CostController(loss.target_gflops, step=loss.target_step)

    def _dataset(self, source: str, train: bool) -> Any:
        d = self.cfg.data
        # evaluation computes flow only where the policy selected it; training runs every
        # segment (masked path), so its flow is computed eagerly in the loader
        return build_dataset(
            source,
            self.model.input_spec,
            train=train,
            segments=d.segments_train if train else d.segments_eval,
            num_classes=self.cfg.num_classes,
            seed=self.cfg.seed,
            on_error=d.on_error,
            base_dir=self.base_dir,
            flow_dir=d.flow_dir,
            flow_method=d.flow_method,
            flow_on_demand=not train,
            sample_like=self.sample_like,
        )

    def _loader(self, dataset: Any, train: bool) -> Any:
        return make_loader(
            dataset,
            batch_size=self.cfg.batch_size,
            info=self.info,
            train=train,
            seed=self.cfg.seed,
            workers=self.cfg.workers,
        )

    def _start_stage(self, p: Pass) -> None:
        self._stage = p.stage
        if p.stage == "finetune" and p.epoch == 0 and self.cfg.finetune_from == "best":
            best = self.out / "best_joint.pt"
            if best.exists():  # restart from the best joint weights; errors surface
                load_state_strict(self.model, load_checkpoint(best)["model"], str(best))
        self.opts = build_optimizers(self.model, p.stage, self.cfg)
        self.scheds = build_schedulers(self.opts, p.stage_epochs, self.cfg)

    def _restore(self) -> None:
        last = latest_checkpoint(self.out) if self.resume else None
        if last is None:
            return
        ckpt = load_checkpoint(last, map_location=self.info.device)
        load_state_strict(self.model, ckpt["model"], str(last))
        self.next_pass, self.step = int(ckpt["next_pass"]), int(ckpt["step"])
        self.best, self.best_joint = float(ckpt["best"]), float(ckpt["best_joint"])
        self.collapse_warnings = list(ckpt.get("collapse_warnings", []))
        self.policy_ready = bool(ckpt.get("policy_ready", self.policy_ready))
        self.last_ce = ckpt.get("last_ce")
        if ckpt.get("grad_scaler"):
            self.scaler.load_state_dict(ckpt["grad_scaler"])
        if ckpt.get("temperature_schedule"):
            self.tau.load_state_dict(ckpt["temperature_schedule"])
        if self.budget is not None and ckpt.get("budget"):
            self.budget.load_state_dict(ckpt["budget"])
        if self.next_pass < len(self.plan) and self.plan[self.next_pass].stage == ckpt["stage"]:
            self._start_stage(self.plan[self.next_pass])
            for name, opt in self.opts.items():
                opt.load_state_dict(ckpt["optimizers"][name])
            for name, sched in self.scheds.items():
                sched.load_state_dict(ckpt["schedulers"][name])
        set_rng_state(ckpt["rng"])

    def _state(self, p: Pass) -> dict[str, Any]:
        return {
            "model_name": self.cfg.model,
            "num_classes": self.cfg.num_classes,
            "model_args": dict(self.cfg.model_args),
            "plugins": plugin_record(unwrap(self.model), self.cfg.model),
            "config": self.cfg.to_dict(),
            "model": unwrap(self.model).state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.opts.items()},
            "schedulers": {k: s.state_dict() for k, s in self.scheds.items()},
            "stage": p.stage,
            "epoch": p.epoch,
            "phase": p.phase,
            "next_pass": self.next_pass,
            "sampler_epoch": self.next_pass - 1,
            "step": self.step,
            "best": self.best,
            "best_joint": self.best_joint,
            "rng": rng_state(),
            "classes": list(getattr(self, "_classes", [])),
            "temperature_schedule": self.tau.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "collapse_warnings": list(self.collapse_warnings),
            "policy_ready": self.policy_ready,
            "last_ce": self.last_ce,
            "budget": self.budget.state_dict() if self.budget is not None else None,
        }

    def _check_fresh(self) -> None:
        if not self.resume and latest_checkpoint(self.out) is not None:
            raise ConfigError(
                f"{str(self.out)!r} already holds a run (last.pt); pass --resume "
                "to continue it or choose another --out"
            )

    def _datasets(self) -> tuple[Any, Any]:
        """The run's training and validation sets, built once. In-memory sources (synthetic
        videos) are featurised once for all the model's inputs; the pre-training stages (and
        the workers that run them) read their modalities from them."""
        if self._data is None:
            d = self.cfg.data
            self._data = (
                self._dataset(d.train, True),
                self._dataset(d.val, False) if d.val else None,
            )
        return self._data

    def pretrain(self) -> dict[str, Any]:
        """Run the recipe's pre-training stages (`adamml.engine.recipe`) now, before `run`
        (which then finds them done); `run` calls it itself. A comparison calls it to start
        the baselines from the pre-trained parts while this run goes on.

        Returns:
            ``{stage: {"top1", "mAP", "parts", "folder"}}`` (empty without stages), as in
            ``metrics.json``'s ``pretrain``.
        """
        if not self._pretrained:
            self._check_fresh()
            self._pretrain(len(self._datasets()[0]))
            self._pretrained = True
        return dict(self.pretrain_summary)

    def _pretrain(self, train_videos: int) -> None:
        """The recipe's pre-training stages, before warm-up."""
        stages = pretraining_plan(self.cfg, self.model, train_videos=train_videos)
        if not stages:
            return
        started = self.resume and latest_checkpoint(self.out) is not None
        init, self.pretrain_summary = run_pretraining(
            stages,
            self.out,
            resume=self.resume or started,
            run_stage=self._run_stage,
            init=self.cfg.init,
            jobs=self.jobs,
        )
        if not started:  # a started main run restores its own weights
            load_backbone_init(self.model, init)

    def _run_stage(self, stage: PretrainStage, folder: Path) -> dict[str, Any]:
        if self.info.is_main:
            print(
                f"pretrain {stage.name} ({', '.join(stage.parts)}): "
                f"{stage.config.schedule.epochs} epochs -> {folder}",
                flush=True,
            )
        trainer = Trainer(
            stage.config,
            folder,
            info=self.info,
            resume=self.resume,
            base_dir=self.base_dir,
            show_progress=self.show_progress and not in_worker(),
            sample_like=self.model.input_spec,  # the stage sees the frames this model sees
        )
        metrics = trainer.run()
        if self.info.is_main:
            print(f"pretrain {stage.name}: val top-1 {metrics['top1']:.2f}%", flush=True)
        return metrics

    # -- one pass ----------------------------------------------------------------------------
    def _train_pass(self, net: torch.nn.Module, loader: Any, p: Pass) -> dict[str, Any]:
        cfg, model = self.cfg, self.model
        sums = {"loss": 0.0, "ce": 0.0, "eff": 0.0, "correct": 0.0, "gflops": 0.0, "n": 0}
        sel = torch.zeros(len(self.modalities), dtype=torch.float64)
        segs, phase_now = 0, None
        for i, (_, inputs, target) in enumerate(
            progress(
                loader,
                enabled=self.show_progress and self.info.is_main,
                desc=f"{p.stage} {p.epoch + 1}/{p.stage_epochs} {p.phase}",
            )
        ):
            phase = p.phase if p.phase != "alternate" else ("recognition", "policy")[i % 2]
            if phase != phase_now:
                set_trainable(model, phase, stage=p.stage, cfg=cfg)
                phase_now = phase
            inputs, target = to_device(inputs, self.info.device), target.to(self.info.device)
            forced = None
            if p.stage == "warmup" and cfg.warmup_policy == "all":
                b, s = next(iter(inputs.values())).shape[:2]
                forced = torch.ones(b, s, len(self.modalities), device=self.info.device)
            out = net(inputs, forced)
            own_loss = getattr(model, "training_loss", None)  # e.g. a SegmentDistiller's
            ce = (
                own_loss(out, target)
                if own_loss is not None
                else classification_loss(out.logits, target)
            )
            loss, eff = ce, torch.zeros(())
            if phase == "policy":
                terms = self.eff_loss.components(out.logits, out.decisions, target)
                # Eq. 4 with lambda_k -> s * lambda_k; s = 1 without a target
                scale = self.budget.scale if self.budget is not None else 1.0
                eff = scale * terms.cost + terms.gamma_term
                loss = ce + eff
            check_finite(float(loss.detach()), stage=p.stage, epoch=p.epoch, step=self.step)
            opt = self.opts["policy" if phase == "policy" else "recognition"]
            for o in self.opts.values():
                o.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.optim.clip_grad_norm:
                self.scaler.unscale_(opt)
                params = [q for g in opt.param_groups for q in g["params"]]
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.clip_grad_norm)
            self.scaler.step(opt)
            self.scaler.update()
            self.step += 1
            if phase == "policy" and self.budget is not None:
                cost = batch_cost(out, model, cfg.data.segments_eval)
                self.budget.observe(cost, out.logits.shape[0], self.info)
            n = out.logits.shape[0]
            sums["loss"] += float(loss.detach()) * n
            sums["ce"] += float(ce.detach()) * n
            sums["eff"] += float(eff.detach()) * n
            hit = (
                (out.logits.argmax(1) == target)
                if target.dim() == 1
                else target.gather(1, out.logits.argmax(1, keepdim=True)).squeeze(1) > 0
            )
            sums["correct"] += float(hit.sum())
            sums["gflops"] += float(out.gflops.double().sum())
            sums["n"] += n
            sel += out.decisions.detach().double().sum(dim=(0, 1)).cpu()
            segs += out.decisions.shape[0] * out.decisions.shape[1]
        # Summed over the ranks: every rank then reports, and decides from, the same numbers.
        keys = list(sums)
        total = all_reduce_sum(
            torch.cat([torch.tensor([sums[k] for k in keys] + [segs], dtype=torch.float64), sel]),
            self.info,
        )
        sums = {k: float(v) for k, v in zip(keys, total[: len(keys)].tolist())}
        segs, sel = float(total[len(keys)]), total[len(keys) + 1 :]
        n = max(1.0, sums["n"])
        return {
            "loss": sums["loss"] / n,
            "ce": sums["ce"] / n,
            "eff": sums["eff"] / n,
            "top1": 100.0 * sums["correct"] / n,
            "gflops": sums["gflops"] / n,
            "selection_rate": {
                m: float(100.0 * sel[k] / max(1.0, segs)) for k, m in enumerate(self.modalities)
            },
        }

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run the remaining passes, then evaluate and write ``metrics.json``.

        Returns:
            The final metrics (see `adamml.engine.metrics.summarize`).
        """
        cfg, info = self.cfg, self.info
        check_init_files(cfg.init)  # before the stages, not hours later
        self.pretrain()  # refuses a folder that already holds a run, unless resuming
        if not self._init_loaded:
            load_backbone_init(self.model, cfg.init)
            self._init_loaded = True
        train_set, val_set = self._datasets()
        self._restore()
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        logger = RunLogger(self.out if info.is_main else None, resume_from_pass=self.next_pass)
        self._classes = [str(c) for c in (getattr(train_set, "classes", None) or [])]
        loader, sampler = self._loader(train_set, True)
        val_loader = self._loader(val_set, False)[0] if val_set is not None else None
        net = wrap_model(self.model, info)
        try:
            for index in range(self.next_pass, len(self.plan)):
                p = self.plan[index]
                if p.stage != self._stage:
                    self._start_stage(p)
                seed_everything(cfg.seed + index)
                sampler.set_epoch(index)
                loader.dataset.set_epoch(index)
                record: dict[str, Any] = {
                    "pass": index,
                    "stage": p.stage,
                    "epoch": p.epoch,
                    "phase": p.phase,
                    "lr": current_lrs(self.opts),
                }
                if self._hold_policy(p):
                    record["skipped"] = (
                        f"recognition cross-entropy {self.last_ce:.3f} is not "
                        f"below the uniform prediction's "
                        f"{chance_ce(cfg.num_classes):.3f} yet (policy_start)"
                    )
                else:
                    record["train"] = self._train_pass(net, loader, p)
                    if p.phase == "recognition" and val_loader is None:
                        self.last_ce = record["train"]["ce"]
                if self.budget is not None:
                    record["budget"] = self.budget.record(self.eff_loss.cost_weights)
                if p.epoch_end:
                    self._end_epoch(p, val_loader, record)
                record["step"] = self.step
                self.next_pass = index + 1
                if info.is_main:
                    logger.log(record)
                    save_checkpoint(
                        self._state(p), self.out, f"pass_{index:04d}.pt", keep=cfg.keep_checkpoints
                    )
                barrier(info)
            return self._final(logger, val_set)
        finally:
            logger.close()

    def _hold_policy(self, p: Pass) -> bool:
        """Whether to skip this policy pass (``policy_start: auto``; see TrainConfig)."""
        if p.phase != "policy" or self.policy_ready:
            return False
        if self.last_ce is not None and self.last_ce < chance_ce(self.cfg.num_classes):
            self.policy_ready = True
        return not self.policy_ready

    def _end_epoch(self, p: Pass, val_loader: Any, record: dict[str, Any]) -> None:
        if p.stage == "joint":
            self.tau.step()
            self.tau.apply(self.model)
        for name, sched in self.scheds.items():
            if not (name == "policy" and "skipped" in record):  # a held policy keeps its lr
                with warnings.catch_warnings():
                    # fp16: a GradScaler that skipped every step of an epoch (inf gradients
                    # while it finds its scale) makes PyTorch warn of a misordering that is not
                    warnings.filterwarnings("ignore", _SCHEDULER_ORDER, UserWarning)
                    sched.step()
        record["tau"] = self.tau.value if self.tau is not None else None
        last = p.epoch + 1 == p.stage_epochs
        if val_loader is None or not (last or (p.epoch + 1) % self.cfg.eval_every == 0):
            if p.stage == "joint" and "train" in record and val_loader is None:
                self._check_policy(p, record, None)
            return
        metrics = summarize(
            evaluate(
                self.model, val_loader, self.info, show_progress=self.show_progress, desc="val"
            )
        )
        record["val"] = metrics
        self.last_ce = float(metrics["ce"])  # type: ignore[arg-type]
        if self.budget is not None and "budget" in record:
            r = self.budget.calibrate(float(metrics["gflops"]))  # type: ignore[arg-type]
            if r is not None:
                record["budget"]["calibration"] = r
        if p.stage == "joint" and "train" in record:
            self._check_policy(p, record, val_loader)
        score = float(metrics[self.cfg.select_metric])  # type: ignore[arg-type]
        selectable = self._selectable(p.stage)
        if self.info.is_main and selectable and score > self.best:
            save_checkpoint(self._state(p), self.out, "best.pt", update_last=False)
        if self.info.is_main and p.stage == "joint" and score > self.best_joint:
            save_checkpoint(self._state(p), self.out, "best_joint.pt", update_last=False)
        if selectable:
            self.best = max(self.best, score)
        if p.stage == "joint":
            self.best_joint = max(self.best_joint, score)

    def _check_policy(self, p: Pass, record: dict[str, Any], val_loader: Any) -> None:
        messages = check_policy(
            epoch=p.epoch,
            train_rates=record["train"]["selection_rate"],
            val=record.get("val"),
            num_classes=self.cfg.num_classes,
            modalities=self.modalities,
            model=self.model,
            val_loader=val_loader,
            info=self.info,
        )
        if messages:
            record["warnings"] = messages
            self.collapse_warnings.extend(messages)
            warn(messages, is_main=self.info.is_main, seen=self._warned)

    def _selectable(self, stage: str) -> bool:
        """Whether an epoch of ``stage`` may become ``best.pt`` (see ``finetune_from``)."""
        if (
            stage == "joint"
            and self.cfg.finetune_from == "last"
            and any(q.stage == "finetune" for q in self.plan)
        ):
            return False
        return stage in _SELECTABLE

    def _calibrate_to_target(self, weights: str, val_set: Any) -> dict[str, Any] | None:
        """``loss.target_calibrate``: set the final model's decision thresholds so that it
        meets ``loss.target_gflops`` on the validation videos, and write ``calibrated.pt``.

        Every rank calibrates on all validation videos in its own process (evaluation is
        deterministic, so the thresholds agree); rank 0 writes the checkpoint. Returns the
        record for ``metrics.json`` (None when there is nothing to calibrate)."""
        cfg = self.cfg
        if self.budget is None or not cfg.loss.target_calibrate or val_set is None:
            return None
        from .calibrate import calibrate, save_calibrated
        from .replay import thresholds_of

        try:
            thresholds_of(self.model)
        except ConfigError as err:
            if self.info.is_main:
                warnings.warn(
                    f"loss.target_calibrate: {err}; the run's cost is where the controller left "
                    "it (set loss.target_calibrate: false to silence this)",
                    stacklevel=2,
                )
            return None

        local = DistInfo(device=self.info.device)
        loader = make_loader(
            val_set,
            batch_size=cfg.batch_size,
            info=local,
            train=False,
            seed=cfg.seed,
            workers=cfg.workers,
        )[0]
        before = summarize(evaluate(self.model, loader, local, show_progress=False))
        result = calibrate(self.model, loader, self.budget.target, show_progress=self.show_progress)
        if self.info.is_main:
            save_calibrated(
                self.out / f"{weights}.pt",
                self.model,
                result,
                self.out / "calibrated.pt",
                data=cfg.data.val,
            )
        barrier(self.info)
        return {
            "checkpoint": "calibrated.pt",
            "thresholds": dict(result.thresholds),
            "val_gflops_before": float(before["gflops"]),  # type: ignore[arg-type]
            "val_top1_before": float(before["top1"]),  # type: ignore[arg-type]
            "val_gflops": result.gflops,
            "val_top1": float(result.metrics["top1"]),
        }

    def _final(self, logger: RunLogger, val_set: Any) -> dict[str, Any]:
        cfg, d = self.cfg, self.cfg.data
        barrier(self.info)
        best = self.out / "best.pt"
        weights = "best" if cfg.final == "best" and best.exists() else "last"
        if weights == "best":
            load_state_strict(self.model, load_checkpoint(best)["model"], str(best))
        calibration = self._calibrate_to_target(weights, val_set)
        split = d.test or d.val or d.train
        loader = self._loader(self._dataset(split, False), False)[0]
        result = evaluate(
            self.model, loader, self.info, show_progress=self.show_progress, desc="test"
        )
        metrics = {**summarize(result), "weights": weights, "split": split}
        if self.pretrain_summary:
            metrics["pretrain"] = self.pretrain_summary
        if self.collapse_warnings:
            metrics["warnings"] = list(self.collapse_warnings)
        if self.budget is not None:
            s, target = self.budget.scale, self.budget.target
            metrics["budget"] = {
                "target_gflops": target,
                "gflops_over_target": float(metrics["gflops"]) / target,  # type: ignore[arg-type]
                "scale": s,
                "lambda": {m: s * w for m, w in self.eff_loss.cost_weights.items()},
                "calibration": self.budget.calibration,
            }
            if calibration is not None:
                metrics["budget"]["thresholds"] = calibration
        if self.info.is_main:
            write_json(self.out / "metrics.json", metrics)
            result.save_decisions(str(self.out / "decisions.npz"))
        return metrics
