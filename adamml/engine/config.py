"""Training configuration: frozen dataclasses, built from plain dicts (YAML lives in the CLI).

The contract keys (``docs/training.md`` and the public API) are ``model``, ``num_classes``,
``data``, ``schedule``, ``loss``, ``model_args`` and ``seed``; everything else has a default
that follows the reference's README (reference §6) with its bugs fixed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

__all__ = [
    "DataConfig",
    "ScheduleConfig",
    "LossConfig",
    "OptimConfig",
    "PretrainConfig",
    "TrainConfig",
    "apply_overrides",
    "parse_value",
    "plain_data",
]


if TYPE_CHECKING:  # the flow method names live with the flow code (adamml.data.flow)
    from ..data.flow import FlowMethod


@dataclass(frozen=True)
class DataConfig:
    """Where the videos come from and how many segments are sampled.

    Attributes:
        train: training manifest (CSV ``path,label``) or a data source (``synthetic:N``: N items
            of Gaussian class patterns; see `adamml.data.sources`).
        val: validation manifest used for model selection; ``None`` skips validation.
        test: split for the final ``metrics.json``; ``None`` uses ``val`` (then ``train``).
        segments_train: segments per video in training (5 in the paper).
        segments_eval: segments per video in evaluation (10 in the paper).
        on_error: what the dataset does with an unreadable video: raise, skip or warn.
        flow_dir: stored optical flow written by ``adamml extract flow`` for the manifests'
            videos (relative to the config file's folder, like manifests); ``None`` computes
            flow from the frames (eagerly for training batches, only for the selected segments
            in validation and test).
        flow_method: how flow is computed from frames: ``tvl1`` (the paper's), ``farneback``,
            ``dis`` or ``raft_small`` (`adamml.data.flow.FlowMethod`); stored in checkpoints
            with the rest of the config, so ``adamml eval``/``predict`` use it by default.
    """

    train: str = ""
    val: str | None = None
    test: str | None = None
    segments_train: int = 5
    segments_eval: int = 10
    on_error: str = "raise"
    flow_dir: str | None = None
    flow_method: FlowMethod = "tvl1"

    def __post_init__(self) -> None:
        from ..data.flow import check_flow_method  # the one list of names (imports OpenCV)

        check_flow_method(self.flow_method, "config key 'data.flow_method'")


@dataclass(frozen=True)
class ScheduleConfig:
    """Stage lengths in epochs (AdaMML "Training Details"; reference §6).

    Attributes:
        warmup_epochs: recognition-only epochs with the policy frozen (5).
        joint_epochs: alternating policy/recognition epochs (20).
        finetune_epochs: recognition-only epochs with the best policy fixed (10).
        epochs: for models without a learned policy (unimodal, fusion, random) the number of
            plain CE epochs; ``None`` uses the sum of the three above (the paper's fair budget).
    """

    warmup_epochs: int = 5
    joint_epochs: int = 20
    finetune_epochs: int = 10
    epochs: int | None = None


@dataclass(frozen=True)
class LossConfig:
    """Efficiency loss (AdaMML Eq. 4): ``cost_weights`` lambda_k and ``gamma``.

    Attributes:
        cost_weights: lambda_k per modality, used as given; ``None`` takes the model's
            reference weights (``model.cost_weights``: rgb 1.0, audio 0.05, the reference
            README's) multiplied by ``cost_scale``.
        cost_scale: the factor on the model's reference weights when ``cost_weights`` is
            ``None`` (0.15, chosen by ``benchmarks/robustness.py``: the reference's ratio between
            modalities at a scale that keeps the expensive modality where it helps).
        gamma: the penalty of a wrong prediction; ``None`` takes the model's (``model.gamma``:
            10 for every registered model, the paper's).
        penalty: the selection penalty of `adamml.losses.EfficiencyLoss`: ``"blockdrop"``
            (the reference's: ``lambda_k * f^2`` on correctly classified videos) or ``"mean"``
            (``lambda_k * f`` on every video).
        target_gflops: a cost to train to, in GFLOPs per video (paper convention, at
            ``data.segments_eval`` segments: the units of ``metrics.json``'s ``gflops``);
            ``None`` (default) trains with the cost weights as given. When set, the trainer
            scales the cost weights after every policy batch until the policy's cost meets it
            (`adamml.engine.budget`; docs/budget-training.md).
        target_step: the controller's step, the change of ``log(scale)`` per policy batch at an
            error of 100 % of the target (0.02).
        target_calibrate: with ``target_gflops`` and ``data.val``, finish the run by
            calibrating the trained policy's decision thresholds on the validation videos to
            the target (`adamml.calibrate`), so that the final model lands on it even where the
            controller left it off (True; ``metrics.json``'s ``budget`` records both costs).
    """

    cost_weights: Mapping[str, float] | None = None
    cost_scale: float = 0.15
    gamma: float | None = None
    penalty: str = "blockdrop"
    target_gflops: float | None = None
    target_step: float = 0.02
    target_calibrate: bool = True


@dataclass(frozen=True)
class OptimConfig:
    """Optimisers and learning-rate schedules (reference §6, README values).

    Attributes:
        optimizer: the recognition network's optimiser: ``"adam"`` (default; ``lr``,
            ``weight_decay`` as L2, ``momentum`` unused) or ``"sgd"`` (the reference's). From
            pre-trained parts, SGD at lr 0.01 made validation accuracy swing between 25 % and
            97 % from epoch to epoch and the policy collapse after it; Adam at 3e-4 was stable
            (docs/training.md).
        lr: learning rate of the recognition network (3e-4; the reference: SGD 0.001).
        momentum: SGD momentum (0.9).
        weight_decay: SGD weight decay (1e-4).
        policy_lr: Adam learning rate of the policy (0.003, chosen by the robustness sweep;
            the reference: 0.01).
        policy_weight_decay: Adam L2 weight decay of the policy (1e-4, not AdamW).
        lr_schedule: ``"cosine"`` (default), ``"multistep"`` (the reference's) or
            ``"constant"``; it acts on the optimisers in use, restarted at each stage.
        milestones: multistep milestones in epochs of the stage (10, 15).
        lr_gamma: multistep factor (0.1).
        clip_grad_norm: optional gradient-norm clip; ``None`` is off (the reference's default).
    """

    optimizer: str = "adam"
    lr: float = 3e-4
    momentum: float = 0.9
    weight_decay: float = 1e-4
    policy_lr: float = 0.003
    policy_weight_decay: float = 1e-4
    lr_schedule: str = "cosine"
    milestones: tuple[int, ...] = (10, 15)
    lr_gamma: float = 0.1
    clip_grad_norm: float | None = None


@dataclass(frozen=True)
class PretrainConfig:
    """The paper's start: every part of a multimodal model trained on its own before warm-up
    (`adamml.engine.recipe`). ``pretrain: none`` and ``pretrain: auto`` are shorthands.

    Attributes:
        mode: ``"auto"``: for a model with two or more modalities, pre-train each recognition
            backbone and each policy feature extractor that ``init`` does not give, as stages of
            the run (``out/pretrain/<part>``); ``"none"``: start from the built weights.
        epochs: epochs of each stage: ``"auto"`` (default) gives 20, or on a small training
            set as many as make 500 optimiser steps, at most 50 (`adamml.engine.recipe.
            stage_epochs`; 20 epochs of 400 videos at batch 16 is the length the robustness
            sweep validated, while 20 epochs of 240 videos, 300 steps, left the RGB network at
            47 % top-1 where 500 steps reached 93 %, docs/training.md); an integer runs exactly
            that many; ``None`` uses the main schedule's total.
        lr: the stages' learning rate (0.003); ``None`` uses ``optim.lr``.
        optimizer: the stages' optimiser, ``"adam"`` (default: from scratch it reached
            77-92 % RGB top-1 where SGD reached 53 %, docs/training.md) or ``"sgd"``; ``None``
            uses ``optim.optimizer``.
        policy: pre-train the policy's feature extractors too; the paper starts them from
            ImageNet.
        policy_target: how a policy extractor is pre-trained: ``"labels"`` (default: a
            classifier on the video labels, on the policy's view) or ``"distill"`` (to mimic,
            segment by segment, the pre-trained recognition backbone it decides for; see
            `adamml.model.SegmentDistiller`). On 12 classes told apart by motion, distillation
            lifted the extractor's top-1 from 13 % to 22 % but the policy still used RGB
            everywhere (docs/training.md).
        eval_every: the stages validate every this many epochs and at their last (5; a stage's
            ``best.pt`` is the best of those). Validation was a quarter of the demo's time when
            every stage epoch was validated.
    """

    mode: str = "auto"
    epochs: int | str | None = "auto"
    lr: float | None = 0.003
    optimizer: str | None = "adam"
    policy: bool = True
    policy_target: str = "labels"
    eval_every: int = 5


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``adamml train`` reads; see ``docs/training.md`` for each key.

    Attributes:
        model: a registered model name, or ``package.module:factory`` for a custom model.
        num_classes: K.
        data, schedule, loss, optim: the sections above.
        model_args: keyword overrides for ``create_model``.
        seed: seeds everything; the data order of pass ``e`` is seeded with ``seed + e``.
        batch_size: global batch (split over ranks under DDP).
        workers: DataLoader workers per process.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        init: ``{modality: checkpoint}`` unimodal checkpoints loaded into the recognition
            backbones; ``{policy.<modality>: checkpoint}`` into the policy's feature
            extractors (see `adamml.engine.instantiate.load_backbone_init`). A part given here is
            not pre-trained.
        pretrain: the `PretrainConfig`.
        alternation: ``"epoch"`` (the reference: a recognition pass, then a policy pass) or
            ``"iteration"`` (alternate every step within one pass).
        warmup_policy: what the frozen policy does in warm-up: ``"sample"`` (the reference:
            the randomly initialised policy samples about 50% per modality) or ``"all"``.
        frozen_policy: decisions of the frozen policy in recognition and fine-tune passes:
            ``"sample"`` (the reference) or ``"argmax"``.
        finetune_from: which joint weights fine-tuning starts from: ``"last"`` (default: the
            end of joint training, where the temperature is lowest) or ``"best"`` (the best
            validation epoch of joint training, the reference). With ``"last"``, ``best.pt`` is
            chosen among the fine-tuning epochs only: they share the final policy, while an earlier
            joint epoch would bring back a policy that training moved away from (often the
            costly all-on one of the first joint epochs, which validation accuracy favours).
        freeze_bn_of_frozen: keep BatchNorm/dropout of a frozen part in eval mode (``False``
            lets BN statistics drift as in the reference).
        tau_start, tau_decay: Gumbel temperature 5.0, x0.9 per joint epoch (the reference:
            x0.965 over 20 joint epochs).
        eval_every: validate every this many epochs (and always at the last one).
        select_metric: ``"top1"`` or ``"mAP"`` for model selection.
        final: which weights ``metrics.json`` reports: ``"best"`` or ``"last"``.
        keep_checkpoints: how many per-pass checkpoints to keep besides last/best.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``: autocast for the backbones in
            training and evaluation (fp16 trains with a gradient scaler); decisions and fusion
            stay float32 (`adamml.precision`).
        compile: ``torch.compile`` the backbones' inference copies used in evaluation
            (see the ``fast`` module of `adamml.backbones`).
        policy_start: ``"auto"`` (default): a joint epoch's policy pass runs only once the
            recognition networks beat the uniform prediction (validation cross-entropy below
            ``log K``; training CE without validation), since with worse networks skipping
            everything is what the loss rewards; ``"immediate"``: from the first joint epoch
            (the reference).
        tau_min: a floor for the Gumbel temperature (``None``: none, the reference).
    """

    model: str = ""
    num_classes: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    model_args: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 16
    workers: int = 0
    device: str = "cpu"
    init: Mapping[str, str] = field(default_factory=dict)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    alternation: str = "epoch"
    warmup_policy: str = "sample"
    frozen_policy: str = "sample"
    finetune_from: str = "last"
    freeze_bn_of_frozen: bool = True
    tau_start: float = 5.0
    tau_decay: float = 0.9
    eval_every: int = 1
    select_metric: str = "top1"
    final: str = "best"
    keep_checkpoints: int = 2
    precision: str = "fp32"
    compile: bool = False
    policy_start: str = "auto"
    tau_min: float | None = None

    def __post_init__(self) -> None:
        _choice("alternation", self.alternation, ("epoch", "iteration"))
        _choice("warmup_policy", self.warmup_policy, ("sample", "all"))
        _choice("frozen_policy", self.frozen_policy, ("sample", "argmax"))
        _choice("finetune_from", self.finetune_from, ("best", "last"))
        _choice("select_metric", self.select_metric, ("top1", "mAP"))
        _choice("final", self.final, ("best", "last"))
        _choice("optim.lr_schedule", self.optim.lr_schedule, ("multistep", "cosine", "constant"))
        _choice("optim.optimizer", self.optim.optimizer, ("sgd", "adam"))
        _choice("data.on_error", self.data.on_error, ("raise", "skip", "warn"))
        _choice("precision", self.precision, ("fp32", "bf16", "fp16"))
        _choice("policy_start", self.policy_start, ("auto", "immediate"))
        _choice("pretrain.mode", self.pretrain.mode, ("auto", "none"))
        _choice("loss.penalty", self.loss.penalty, ("blockdrop", "mean"))
        _choice("pretrain.policy_target", self.pretrain.policy_target, ("distill", "labels"))
        if self.pretrain.optimizer is not None:
            _choice("pretrain.optimizer", self.pretrain.optimizer, ("sgd", "adam"))
        if not isinstance(self.pretrain.eval_every, int) or self.pretrain.eval_every < 1:
            raise ConfigError(
                "config key 'pretrain.eval_every' must be an integer >= 1; got "
                f"{self.pretrain.eval_every!r}"
            )
        if self.pretrain.epochs not in (None, "auto") and (
            not isinstance(self.pretrain.epochs, int)
            or isinstance(self.pretrain.epochs, bool)
            or self.pretrain.epochs < 1
        ):
            raise ConfigError(
                "config key 'pretrain.epochs' must be 'auto', an integer >= 1 or null; "
                f"got {self.pretrain.epochs!r}"
            )
        if not self.model:
            raise ConfigError("config key 'model' is required (e.g. model: test_adamml_rgb_audio)")
        for key, value in (
            ("num_classes", self.num_classes),
            ("batch_size", self.batch_size),
            ("eval_every", self.eval_every),
            ("data.segments_train", self.data.segments_train),
            ("data.segments_eval", self.data.segments_eval),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"config key {key!r} must be an integer >= 1; got {value!r}")
        for key in ("warmup_epochs", "joint_epochs", "finetune_epochs"):
            value = getattr(self.schedule, key)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"config key 'schedule.{key}' must be an integer >= 0; got {value!r}"
                )
        positive = [
            ("optim.lr", self.optim.lr),
            ("optim.policy_lr", self.optim.policy_lr),
            ("tau_start", self.tau_start),
            ("loss.target_step", self.loss.target_step),
        ]
        if not isinstance(self.loss.target_calibrate, bool):
            raise ConfigError(
                "config key 'loss.target_calibrate' must be true or false; "
                f"got {self.loss.target_calibrate!r}"
            )
        if self.loss.target_gflops is not None:  # the model's costs are checked by the trainer
            positive.append(("loss.target_gflops", self.loss.target_gflops))
        for key, value in positive:
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"config key {key!r} must be a number > 0; got {value!r}")
        if not self.data.train:
            raise ConfigError("config key 'data.train' is required (a manifest CSV or synthetic:N)")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrainConfig:
        """Build a config from nested plain values (a parsed YAML file).

        Raises:
            ConfigError: for an unknown key (with the known ones) or a bad value.
        """
        if not isinstance(raw, Mapping):
            raise ConfigError(f"a training config must be a mapping; got {type(raw).__name__}")
        return _build(cls, raw, "")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested values (lists, dicts, numbers, strings), as stored in checkpoints."""
        return plain_data(dataclasses.asdict(self))


_SECTIONS = {
    "data": DataConfig,
    "schedule": ScheduleConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "pretrain": PretrainConfig,
}
# Convenience: optimiser keys may be written at the top level (``lr: 0.01``).
_OPTIM_KEYS = {f.name for f in dataclasses.fields(OptimConfig)}


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"config key {key!r} must be one of {', '.join(allowed)}; got {value!r}")


def _build(cls: type, raw: Mapping[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    optim_top: dict[str, Any] = {}
    for key, value in raw.items():
        if cls is TrainConfig and key in _OPTIM_KEYS:
            optim_top[key] = value
            continue
        if key not in known:
            names = sorted(known) + (sorted(_OPTIM_KEYS) if cls is TrainConfig else [])
            raise ConfigError(
                f"unknown config key {prefix + str(key)!r}; known: {', '.join(names)}"
            )
        if cls is TrainConfig and key in _SECTIONS:
            if value is None:
                value = {}
            if key == "pretrain" and isinstance(value, str):  # pretrain: none | auto
                value = {"mode": value}
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {key!r} must be a mapping; got {value!r}")
            value = _build(_SECTIONS[key], value, f"{key}.")
        elif key == "milestones":
            value = tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        elif key in ("model_args", "init", "cost_weights") and value is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {prefix + key!r} must be a mapping; got {value!r}")
            value = dict(value)
        kwargs[key] = value
    if optim_top:
        base = kwargs.get("optim", OptimConfig())
        kwargs["optim"] = _build(OptimConfig, {**dataclasses.asdict(base), **optim_top}, "optim.")
    try:
        return cls(**kwargs)
    except TypeError as err:  # a wrong type deep in a constructor: name the section
        raise ConfigError(f"bad config section {prefix or 'top level'}: {err}") from None


def plain_data(value: Any) -> Any:
    """``value`` as YAML/JSON-ready data: mappings become dicts with string keys, tuples lists.

    Example:
        >>> plain_data({"num_segments": (5, 10), 1: {"a": ("x",)}})
        {'num_segments': [5, 10], '1': {'a': ['x']}}
    """
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value


def parse_value(text: str) -> Any:
    """Parse the right-hand side of a ``key=value`` override as YAML (``3``, ``0.1``,
    ``[10, 15]``, ``{rgb: a.pt}``, ``null``, ``true``, plain strings)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted ``key=value`` overrides (``schedule.joint_epochs=3``) to a nested dict.

    Raises:
        ConfigError: if an override has no ``=`` or walks into a non-mapping.
    """
    out: dict[str, Any] = plain_data(dict(raw))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override {item!r} must look like key=value (e.g. schedule.joint_epochs=3)"
            )
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override {item!r} has an empty key")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = parse_value(text)
    return out
