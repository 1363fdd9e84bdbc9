"""The AdaMML composition: policy -> router -> recognition backbones -> fusion, and nothing else.

```
inputs {m: (B, S, T, C, H, W)}
  │  modality.policy_view            (160x160, frames 0, 2, 4, 6 in the paper)
  ▼
policy(views) ──► decisions (B, S, M), policy logits (B, S, M, 2)
  │
  ▼
router(inputs, decisions) ──► {m: (B, S, K)}   zeros where skipped; real skipping in eval
  │
  ▼
fusion(per_modality, decisions) ──► (B, S, K) ──► mean over S ──► logits (B, K)
```
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.dropout import _DropoutNd

from ._checks import canonical_inputs
from .errors import CheckpointError, ConfigError, ShapeError
from .modalities import InputSpec, Modality, get_modality
from .modalities import canonical_name as _canonical
from .precision import autocast, check_precision, full_precision
from .types import ModelOutput

__all__ = [
    "AdaMML",
    "PolicyViewClassifier",
    "SegmentDistiller",
    "PHASES",
    "freeze_norm_and_dropout",
]

POLICY_PART = "policy."
"""Prefix of the part names of the policy's feature extractors (``policy.rgb``)."""

PHASES = ("recognition", "policy")
"""What one training phase trains (AdaMML "Training Details"); the other half is frozen."""


def freeze_norm_and_dropout(module: nn.Module) -> None:
    """Put the normalisation and dropout layers inside ``module`` in eval mode, so a frozen
    part's BatchNorm statistics stay put and it computes what it will compute in evaluation
    (the reference lets them drift). Other layers keep their mode."""
    for sub in module.modules():
        if isinstance(sub, (_NormBase, nn.GroupNorm, _DropoutNd)):
            sub.eval()


def load_weights_strict(module: nn.Module, state: Mapping[str, Tensor], message: str) -> None:
    """``module.load_state_dict(state, strict=True)``, turning a key or shape mismatch into a
    CheckpointError: ``message``, then the first mismatches in parentheses (the reference
    loaded with ``strict=False``; §10)."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        raise CheckpointError(f"{message} ({' '.join(lines[1:4]) or lines[0]})") from None


class PolicyViewClassifier(nn.Module):
    """A policy feature extractor trained as a classifier on the policy's view of its modality.

    The paper starts the policy's extractors from ImageNet; without a download, the recipe
    pre-trains them as classifiers on the training videos (`AdaMML.part_classifier`). The input
    is the recognition-size segment; the policy view (resize, frame stride) is taken here.

    Args:
        net: the extractor, with a classifier (``num_classes > 0``).
        spec: the modality whose policy view the extractor sees.

    Shape:
        ``(N, T, C, H, W)`` recognition segments -> ``(N, K)`` logits.
    """

    def __init__(self, net: nn.Module, spec: Modality) -> None:
        super().__init__()
        self.net = net
        self.spec = spec
        self.num_classes = int(getattr(net, "num_classes", 0))
        self.num_features = int(getattr(net, "num_features", 0))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.spec.policy_view(x.unsqueeze(1)).squeeze(1))


class SegmentDistiller(nn.Module):
    """A policy extractor pre-trained to mimic, segment by segment, the recognition network it
    decides for (the teacher, frozen): AdaMML's stand-in for the ImageNet start of the policy.

    A classifier trained on video labels learns little when its cheap view cannot tell the
    classes apart (12 classes told apart by motion: 13 % top-1), yet the policy only needs to
    see *where* the recognition network has something to say. The teacher's output is peaked on
    segments that carry the class and flat elsewhere, and mimicking it teaches exactly that
    difference. The loss is the segment-wise KL divergence from the teacher's softmax to the
    student's (`training_loss`); ``logits`` are the student's video-level mean, so the usual
    metrics read as a classifier's.

    Args:
        student: a `PolicyViewClassifier`.
        teacher: the recognition backbone of the same decision (weights loaded), frozen.
        student_modality: what the student looks at (``"rgbdiff"`` with the proxy).
        teacher_modality: what the teacher runs on (``"flow"``).
        specs: the two modalities' `Modality`, for ``input_spec``.

    Shape:
        ``inputs[m]: (B, S, T, C, H, W)`` for both modalities -> ``ModelOutput(logits (B, K),
        decisions (B, S, 1) of ones, None, gflops (B,) of zeros)``.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        student_modality: str,
        teacher_modality: str,
        specs: Mapping[str, Modality],
    ) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.student_modality, self.teacher_modality = student_modality, teacher_modality
        self.modalities: tuple[str, ...] = (student_modality,)
        self.specs = dict(specs)
        self._segment_logits: tuple[Tensor, Tensor] | None = None

    @property
    def input_spec(self) -> dict[str, InputSpec]:
        """The student's and the teacher's inputs."""
        names = dict.fromkeys((self.student_modality, self.teacher_modality))
        return {m: self.specs[m].input_spec for m in names}

    def train(self, mode: bool = True) -> SegmentDistiller:
        """The student trains; the teacher stays in eval mode (frozen BatchNorm)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def recognition_parameters(self) -> list[nn.Parameter]:
        """The student's parameters (the teacher has none to train)."""
        return list(self.student.parameters())

    def policy_parameters(self) -> list[nn.Parameter]:
        """None: there is no policy to train."""
        return []

    def forward(self, inputs: Mapping[str, Tensor], decisions: Tensor | None = None) -> ModelOutput:
        """Run the student (and, in training, the teacher) on every segment."""
        x = inputs[self.student_modality]
        b, s = x.shape[:2]
        z = self.student(x.flatten(0, 1)).view(b, s, -1)
        if self.training:
            with torch.no_grad():
                t = self.teacher(inputs[self.teacher_modality].flatten(0, 1)).view(b, s, -1)
            self._segment_logits = (z, t)
        ones = z.new_ones(b, s, 1)
        return ModelOutput(z.mean(dim=1), ones, None, z.new_zeros(b))

    def training_loss(self, out: ModelOutput, target: Tensor) -> Tensor:
        """KL(teacher || student) per segment, averaged (the last training forward's)."""
        if self._segment_logits is None:
            raise RuntimeError("training_loss needs a training forward first")
        z, t = self._segment_logits
        self._segment_logits = None
        return torch.nn.functional.kl_div(
            z.flatten(0, 1).log_softmax(-1),
            t.flatten(0, 1).log_softmax(-1),
            log_target=True,
            reduction="batchmean",
        )


class AdaMML(nn.Module):
    """Adaptive multi-modal video recognition (AdaMML, ICCV 2021, Sec. 3 and Fig. 2).

    The blocks are given, not built (dependency injection, as TorchMultimodal does), so a variant
    is a few lines; [`create_model`][adamml.zoo.create_model] builds them from registered
    names. Decision k of the policy gates recognition modality k: with the RGB-difference proxy
    the policy looks at ``("rgb", "rgbdiff")`` while the router runs ``("rgb", "flow")``, and flow
    is only needed on the segments where it was selected (pass it as a ``SegmentSource``).

    Args:
        policy: a policy network (`adamml.policies`); ``policy.modalities`` are the modalities
            it looks at, one decision each.
        router: a [`ModalityRouter`][adamml.router.ModalityRouter] holding one recognition
            backbone per modality; its order defines ``model.modalities``.
        fusion: a fusion module (`adamml.fusion`) over ``model.modalities``.
        modality_specs: the [`Modality`][adamml.modalities.Modality] of each name used, when it
            differs from the registered one (tiny models use smaller inputs).
        cost_weights: default efficiency-loss weights lambda_k for training (Eq. 4).
        gamma: default efficiency-loss gamma (Eq. 4).
        num_segments: deprecated and ignored (nothing read it); the data pipeline's
            ``segments_train``/``segments_eval`` set S.
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"``: the recognition backbones
            and the policy's extractors run under autocast; decisions and fusion stay float32
            (`adamml.precision`). Change it with `set_precision`.

    In evaluation the backbones run their inference fast path (folded BatchNorm,
    channels_last, cache-sized chunks; `adamml.backbones.fast`), tuned with
    `configure_inference`.

    Shape:
        - inputs: ``{m: (B, S, T, C, H, W)}``; audio ``(B, S, 1, 1, F, W)``.
        - output: [`ModelOutput`][adamml.types.ModelOutput] with ``logits (B, K)``,
          ``decisions (B, S, M)``, ``policy_logits (B, S, M, 2) | None``, ``gflops (B,)``.

    Example:
        >>> import adamml
        >>> model = adamml.create_model("test_adamml_rgb_audio", num_classes=5)
        >>> x = {m: torch.randn(2, 3, *s.shape) for m, s in model.input_spec.items()}
        >>> model.eval()(x).logits.shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        policy: nn.Module,
        router: nn.Module,
        fusion: nn.Module,
        *,
        modality_specs: Mapping[str, Modality] | None = None,
        cost_weights: Mapping[str, float] | None = None,
        gamma: float = 10.0,
        num_segments: tuple[int, int] | None = None,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        if num_segments is not None:
            warnings.warn(
                "AdaMML(num_segments=...) is deprecated and ignored: the data "
                "pipeline sets S (data.segments_train, data.segments_eval)",
                DeprecationWarning,
                stacklevel=2,
            )
        self.precision = check_precision(precision)
        self.policy = policy
        self.router = router
        self.fusion = fusion
        self.modalities: tuple[str, ...] = tuple(router.modalities)
        self.policy_modalities: tuple[str, ...] = tuple(policy.modalities)
        if len(self.policy_modalities) != len(self.modalities):
            raise ShapeError(
                f"the policy decides for {len(self.policy_modalities)} modalities "
                f"{self.policy_modalities} but the router runs {len(self.modalities)} "
                f"{self.modalities}; decision k gates recognition modality k"
            )
        fused = tuple(getattr(fusion, "modalities", self.modalities))
        if fused != self.modalities:
            raise ShapeError(f"fusion is over {fused} but the router runs {self.modalities}")
        specs = dict(modality_specs or {})
        self.specs: dict[str, Modality] = {
            m: specs.get(m) or get_modality(m) for m in (*self.modalities, *self.policy_modalities)
        }
        self.cost_weights = dict(
            cost_weights or {m: self.specs[m].cost_weight for m in self.modalities}
        )
        self.gamma = float(gamma)
        self._cost_tables: dict[str, Any] = {}
        self.components: dict[str, tuple[str, ...]] = {}
        """The registered names the model was built from, by entry-point group
        (``{"adamml.modalities": ("rgb", "audio"), "adamml.backbones": (...), ...}``), filled by
        `create_model`; a training checkpoint records where the plugin ones came from."""

    # -- how it runs ---------------------------------------------------------------------------
    def set_precision(self, precision: str) -> AdaMML:
        """Run the backbones in ``"fp32"``, ``"bf16"`` or ``"fp16"`` from now on (returns self).

        Raises:
            ConfigError: for another value.
        """
        self.precision = check_precision(precision)
        return self

    def configure_inference(self, **options: Any) -> AdaMML:
        """Set fields of every backbone's eval fast path
        (`InferenceOptions`: ``enabled``, ``fold_bn``, ``fuse_act``, ``channels_last``,
        ``chunk_mb``, ``compile``); returns self.

        Example:
            >>> model.configure_inference(compile=True, chunk_mb=64)  # doctest: +SKIP
        """
        for module in self.modules():
            current = getattr(module, "inference_options", None)
            if current is not None:
                module.inference_options = current.replace(**options)
        return self

    # -- description ---------------------------------------------------------------------------
    @property
    def input_spec(self) -> dict[str, InputSpec]:
        """What one segment of each needed input looks like, ``{m: InputSpec((T, C, H, W))}``.

        Policy-only modalities (``rgbdiff`` with the proxy) are included: the data pipeline
        produces them at recognition size and the model derives the policy view.
        """
        names = list(self.modalities)
        if getattr(self.policy, "needs_views", True):
            names += [m for m in self.policy_modalities if m not in names]
        return {m: self.specs[m].input_spec for m in names}

    @property
    def cost_table(self) -> Any:
        """Per-segment GMACs in the paper convention, measured once from the modules.

        Returns:
            [`CostTable`][adamml.flops.CostTable] with ``.recognition[m]``, ``.policy[m]`` and
            ``.policy_total``.
        """
        return self.get_cost_table("paper")

    def get_cost_table(self, convention: str = "paper") -> Any:
        """The [`CostTable`][adamml.flops.CostTable] in ``convention`` (``"paper"`` or
        ``"all"``), measured on first use and cached."""
        if convention not in self._cost_tables:
            from .flops import measure_cost_table

            self._cost_tables[convention] = measure_cost_table(self, convention=convention)
        return self._cost_tables[convention]

    def recognition_parameters(self) -> list[nn.Parameter]:
        """Parameters of the recognition networks and the fusion (trained with SGD)."""
        return [*self.router.parameters(), *self.fusion.parameters()]

    def policy_parameters(self) -> list[nn.Parameter]:
        """Parameters of the policy network (trained with Adam)."""
        return list(self.policy.parameters())

    def set_phase(
        self, phase: str, *, freeze_statistics: bool = True, policy_decisions: str = "sample"
    ) -> AdaMML:
        """Train mode for one training phase: ``"recognition"`` (router and fusion learn, the
        policy is frozen) or ``"policy"`` (the reverse); AdaMML "Training Details".

        The trained half gets gradients, the frozen half none. Returns self; the modes hold
        until the next ``train()``/``eval()``.

        Args:
            phase: ``"recognition"`` or ``"policy"``.
            freeze_statistics: put the frozen half's normalisation and dropout layers in eval
                mode (`freeze_norm_and_dropout`).
            policy_decisions: how a frozen policy's gates decide: ``"sample"`` (the reference)
                or ``"argmax"``; ignored in the policy phase (a trained policy samples).

        Raises:
            ConfigError: for an unknown phase or decision mode.
        """
        from .policies.gate import DECISION_MODES, set_decision_mode

        if phase not in PHASES:
            raise ConfigError(f"phase must be one of {PHASES}; got {phase!r}")
        if policy_decisions not in DECISION_MODES:
            raise ConfigError(
                f"policy_decisions must be one of {DECISION_MODES}; got {policy_decisions!r}"
            )
        self.train()
        train_policy = phase == "policy"
        for p in self.recognition_parameters():
            p.requires_grad_(not train_policy)
        for p in self.policy_parameters():
            p.requires_grad_(train_policy)
        frozen = [self.router, self.fusion] if train_policy else [self.policy]
        if freeze_statistics:
            for module in frozen:
                freeze_norm_and_dropout(module)
        if not train_policy and policy_decisions != "sample":
            own = getattr(self.policy, "set_decision_mode", None)  # a policy may define its own
            if callable(own):
                own(policy_decisions)
            else:
                set_decision_mode(self.policy, policy_decisions)
        return self

    # -- parts: what a training recipe pre-trains and initialises on its own -------------------
    def policy_extractors(self) -> dict[str, nn.Module]:
        """The policy's per-modality feature extractors, ``{modality: module}``, from
        ``policy.extractors()``; empty for a policy without any (random, all-on)."""
        extractors = getattr(self.policy, "extractors", None)
        return dict(extractors()) if callable(extractors) else {}

    @property
    def recognition_part_names(self) -> tuple[str, ...]:
        """The recognition backbones as parts: ``("rgb", "audio")``."""
        return tuple(self.modalities)

    @property
    def policy_part_names(self) -> tuple[str, ...]:
        """The policy's feature extractors as parts: ``("policy.rgb", "policy.audio")``."""
        return tuple(POLICY_PART + m for m in self.policy_extractors())

    @property
    def part_names(self) -> tuple[str, ...]:
        """The parts that can be pre-trained and initialised on their own: one per recognition
        backbone (``"rgb"``) and one per policy feature extractor (``"policy.rgb"``)."""
        return (*self.recognition_part_names, *self.policy_part_names)

    def is_policy_part(self, name: str) -> bool:
        """Whether part ``name`` is one of the policy's extractors (else a recognition
        backbone)."""
        return name.startswith(POLICY_PART)

    def part_modality(self, name: str) -> str:
        """The modality part ``name`` looks at (``"policy.rgbdiff"`` -> ``"rgbdiff"``)."""
        return _canonical(name[len(POLICY_PART) :] if self.is_policy_part(name) else name)

    def part(self, name: str) -> nn.Module:
        """The module of part ``name`` (see `part_names`).

        Raises:
            ConfigError: for a name that is not one of this model's parts.
        """
        m = self.part_modality(name)
        if self.is_policy_part(name):
            module = self.policy_extractors().get(m)
        else:
            module = self.router.backbone(m) if m in self.modalities else None
        if module is None:
            raise ConfigError(
                f"{name!r} is not a part of this model; its parts are {list(self.part_names)}"
            )
        return module

    def part_classifier(self, name: str, num_classes: int) -> AdaMML:
        """A one-modality classifier around a copy of part ``name``, for pre-training it.

        A recognition backbone is used as it is; a policy extractor gets a classifier and sees
        the policy's view of its modality
        (`PolicyViewClassifier`). The classifier's
        weights load back with [`load_part_state`][adamml.model.AdaMML.load_part_state].

        Args:
            name: a part name (``"rgb"``, ``"policy.rgb"``).
            num_classes: K.

        Returns:
            An `AdaMML` with an all-on policy and average fusion over the one modality, whose
            ``input_spec`` is the part modality's recognition input.
        """
        import copy

        from .fusion.average import AverageFusion
        from .policies.fixed import AllPolicy
        from .router import ModalityRouter

        net = copy.deepcopy(self.part(name))
        m = self.part_modality(name)
        if self.is_policy_part(name):
            reset = getattr(net, "reset_classifier", None)
            if not callable(reset):
                raise ConfigError(
                    f"the {name!r} extractor ({type(net).__name__}) has no "
                    "reset_classifier(num_classes), so it cannot be pre-trained "
                    "as a classifier; give it an init checkpoint instead"
                )
            reset(num_classes)
            net = PolicyViewClassifier(net, self.specs[m])
        return AdaMML(
            AllPolicy((m,)),
            ModalityRouter({m: net}),
            AverageFusion((m,)),
            modality_specs={m: self.specs[m]},
        )

    def teacher_of(self, name: str) -> str:
        """The recognition modality whose decision a policy part's modality makes
        (``policy.rgbdiff`` -> ``flow`` with the RGB-difference proxy)."""
        return self.modalities[self.policy_modalities.index(self.part_modality(name))]

    def part_distiller(self, name: str, num_classes: int) -> SegmentDistiller:
        """A `SegmentDistiller` that pre-trains policy part
        ``name`` from this model's recognition backbone of the same decision (load the
        teacher's weights into this model first)."""
        import copy

        if not self.is_policy_part(name):
            raise ConfigError(f"only policy parts are distilled; got {name!r}")
        classifier = self.part_classifier(name, num_classes)
        m = self.part_modality(name)
        student = classifier.router.backbone(m)
        teacher_m = self.teacher_of(name)
        teacher = copy.deepcopy(self.part(teacher_m))
        return SegmentDistiller(
            student, teacher, m, teacher_m, {m: self.specs[m], teacher_m: self.specs[teacher_m]}
        )

    def load_part_state(self, name: str, state: Mapping[str, Tensor], *, what: str = "") -> None:
        """Load weights into part ``name``.

        ``state`` is the state dict of a [`part_classifier`][adamml.model.AdaMML.part_classifier]
        (or of any model whose router holds the part's modality, e.g. a ``unimodal_<m>`` model),
        or the part module's own state dict. Recognition backbones load strictly; a policy
        extractor takes every weight it has and ignores the source's classifier.

        Raises:
            ConfigError: for an unknown part.
            CheckpointError: if the weights do not fit (keys or shapes listed).
        """
        target = self.part(name)
        policy_part = self.is_policy_part(name)
        m = self.part_modality(name)
        picked = dict(state)
        for prefix in (f"router.backbones.{m}.", "router.backbones."):
            found = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if found and prefix == "router.backbones.":  # another name for the only backbone
                names = {k.split(".", 1)[0] for k in found}
                if len(names) != 1:
                    raise CheckpointError(
                        f"{what or 'the state'} holds backbones {sorted(names)}, none named {m!r}"
                    )
                found = {k.split(".", 1)[1]: v for k, v in found.items()}
            if found:
                picked = found
                break
        if policy_part:
            if picked and any(k.startswith("student.") for k in picked):  # a SegmentDistiller
                picked = {k[8:]: v for k, v in picked.items() if k.startswith("student.")}
            if picked and all(k.startswith("net.") for k in picked):
                picked = {k[4:]: v for k, v in picked.items()}  # a PolicyViewClassifier
            wanted = target.state_dict()
            picked = {k: v for k, v in picked.items() if k in wanted}
        load_weights_strict(target, picked, f"{what or 'the state'} does not fit part {name!r}")

    def part_architecture(self, name: str) -> dict[str, tuple[int, ...]]:
        """Weight names and shapes of part ``name`` without its classifier: two parts with
        the same architecture can share one pre-training."""
        module = self.part(name)
        head = {f"fc.{k}" for k in getattr(module, "fc", nn.Identity()).state_dict()}
        return {k: tuple(v.shape) for k, v in module.state_dict().items() if k not in head}

    # -- forward -------------------------------------------------------------------------------
    def check_inputs(self, inputs: Mapping[str, Any]) -> tuple[dict[str, Any], int, int]:
        """The inputs by canonical name (``sound`` -> ``audio``; a 5-d audio input gets its
        ``T = 1`` axis), checked against ``input_spec``, with their ``B`` and ``S``.

        Raises:
            ShapeError: if an input is missing or has the wrong shape.
        """
        needed = self.input_spec
        canon, b, s = canonical_inputs(inputs, list(needed), unused="warn")
        for m in needed:
            x = canon[m]
            if isinstance(x, Tensor) and self.specs[m].is_audio and x.dim() == 5:
                x = canon[m] = x.unsqueeze(2)  # (B, S, 1, F, W) -> (B, S, T=1, 1, F, W)
            if isinstance(x, Tensor) and not self._is_policy_view(m, x):
                self.specs[m].check(x)
        return canon, b, s

    def _is_policy_view(self, m: str, x: Any) -> bool:
        """A policy-only input (``rgbdiff`` with the proxy) may be given as the policy's view
        already, ``(B, S, T', C, H', W')``: the pipeline then computes only the frames the
        policy looks at (`adamml.data.load_video_inputs`)."""
        return (
            m not in self.modalities
            and isinstance(x, Tensor)
            and x.dim() == 6
            and tuple(x.shape[2:]) == self.specs[m].policy_input_spec.shape
        )

    def policy_views(self, inputs: Mapping[str, Any]) -> dict[str, Tensor]:
        """The policy's view of each modality it looks at (AdaMML appendix B)."""
        if not getattr(self.policy, "needs_views", True):
            ref = next(
                (v for v in inputs.values() if isinstance(v, Tensor)), next(iter(inputs.values()))
            )  # only B, S and the device are read
            return {m: inputs.get(m, ref) for m in self.policy_modalities}
        return {
            m: inputs[m] if self._is_policy_view(m, inputs[m]) else self._source_view(m, inputs[m])
            for m in self.policy_modalities
        }

    def _source_view(self, m: str, x: Any) -> Tensor:
        """The policy view of a tensor, or of a ``SegmentSource`` (e.g. on-demand flow): one
        with ``select_frames`` produces only the frames the view keeps, others every segment."""
        spec = self.specs[m]
        if isinstance(x, Tensor) or spec.is_audio:
            return spec.policy_view(x)
        if hasattr(x, "select_frames"):
            kept = x.select_frames(range(0, spec.frames, spec.policy_frame_stride))
            return spec.replace(policy_frame_stride=1).policy_view(kept)
        b, s = x.shape[:2]
        grid = torch.cartesian_prod(torch.arange(b), torch.arange(s))
        return spec.policy_view(x.gather(grid[:, 0], grid[:, 1]).reshape(b, s, *x.shape[2:]))

    def forward(self, inputs: Mapping[str, Any], decisions: Tensor | None = None) -> ModelOutput:
        """Decide, route, fuse and average over segments.

        Args:
            inputs: one tensor (or `SegmentSource`) per modality in ``model.input_spec``;
                ``sound`` is accepted for ``audio``.
            decisions: optional ``(B, S, M)`` 0/1 tensor that replaces the policy's decisions
                (the policy still runs, so ``policy_logits`` and the cost stay comparable).

        Returns:
            [`ModelOutput`][adamml.types.ModelOutput].

        Raises:
            ShapeError: if an input is missing or has the wrong shape, or ``decisions`` is not
                ``(B, S, M)``.
        """
        canon, b, s = self.check_inputs(inputs)
        device_type = self._device_type(canon)
        with autocast(self.precision, device_type):
            return self._forward(canon, b, s, decisions, device_type)

    @staticmethod
    def _device_type(inputs: Mapping[str, Any]) -> str:
        for x in inputs.values():
            device = getattr(x, "device", None)
            if device is not None:
                return torch.device(device).type
        return "cpu"

    def _forward(
        self, canon: dict[str, Any], b: int, s: int, decisions: Tensor | None, device_type: str
    ) -> ModelOutput:
        policy_out = self.policy(self.policy_views(canon))
        policy_logits = policy_out.logits
        if decisions is None:
            decisions = policy_out.decisions
        else:
            if tuple(decisions.shape) != (b, s, len(self.modalities)):
                raise ShapeError(
                    f"decisions must have shape (B, S, M) = {(b, s, len(self.modalities))} "
                    f"for modalities {self.modalities}; got {tuple(decisions.shape)}"
                )
            ref = policy_out.decisions
            decisions = decisions.to(device=ref.device, dtype=ref.dtype)
        segment_logits = self.fuse_segments(canon, decisions)
        with full_precision(device_type):
            logits = segment_logits.mean(dim=1)
        gflops = self.cost_table.per_video(decisions.detach())
        return ModelOutput(logits, decisions, policy_logits, gflops.to(logits.device))

    def fuse_segments(self, inputs: Mapping[str, Any], decisions: Tensor) -> Tensor:
        """Route and fuse: the fused segment logits for given decisions, in float32 (the policy
        does not run). ``forward`` averages them over S; a stream (`stream`) keeps their
        running mean.

        Args:
            inputs: checked inputs (`check_inputs`), tensors or `SegmentSource`.
            decisions: ``(B, S, M)`` 0/1.

        Returns:
            ``(B, S, K)``.
        """
        features = getattr(self.fusion, "input_kind", "logits") == "features"
        per_modality = self.router(
            {m: inputs[m] for m in self.modalities}, decisions, features=features
        )
        with full_precision(self._device_type(inputs)):  # fusion in float32
            per_modality = {m: v.float() for m, v in per_modality.items()}
            return self.fusion(per_modality, decisions.float())

    def stream(
        self,
        *,
        early_exit: Any = None,
        generator: torch.Generator | None = None,
    ) -> Any:
        """A [`VideoStream`][adamml.streaming.VideoStream]: feed one segment at a time, get the
        running prediction, the segment's decisions and the cost so far (online inference).

        Args:
            early_exit: an [`EarlyExit`][adamml.streaming.EarlyExit] rule: a video stops once
                its running prediction is confident enough (``None``: never).
            generator: the gates' noise (sampling decisions) or a random policy's draws.

        Raises:
            ConfigError: when the fusion mixes segments (``fusion.segmentwise`` False) or the
                policy does not say how it decides segment by segment (``stream_mode``).

        Example:
            >>> stream = model.eval().stream()  # doctest: +SKIP
            >>> for segment in segments:  # {m: (B, T, C, H, W)}  # doctest: +SKIP
            ...     step = stream.step(segment)
            ...     print(step.logits.argmax(-1), step.gflops)
        """
        from .streaming import VideoStream

        return VideoStream(self, early_exit=early_exit, generator=generator)
