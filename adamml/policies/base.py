"""What every policy shares: modality names, view checking and the joint feature extractor."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from .._checks import canonical_inputs, canonical_modalities
from ..errors import ConfigError, ShapeError
from ..modalities import canonical_name as _canonical
from ..precision import full_precision
from ..types import PolicyOutput

__all__ = [
    "canonical_modalities",
    "check_views",
    "batch_segments",
    "JointFeaturePolicy",
    "init_use_bias",
    "use_log_odds",
]


_NEVER = 1e6
"""A threshold this large never uses a modality (``inf`` is stored as given, applied as this)."""


def init_use_bias(heads: Sequence[nn.Linear], init_use: float | None) -> None:
    """Start (skip, use) heads so that a segment is used with probability ``init_use``.

    The bias of the *use* logit is set to ``log(p / (1 - p))`` and the *skip* bias to 0, so
    a freshly initialised policy starts close to all-on (``init_use=0.9``) instead of a coin
    flip: joint training then moves away from weighted fusion by skipping what does not help
    rather than from random selection (docs/training.md).

    Raises:
        ConfigError: unless ``0 < init_use < 1``.
    """
    if init_use is None:
        return
    use = use_log_odds(init_use)
    with torch.no_grad():
        for head in heads:
            head.bias.zero_()
            head.bias[1] = use


def use_log_odds(init_use: float) -> float:
    """``log(p / (1 - p))`` for ``p = init_use``: the *use* bias of a fresh policy head.

    Raises:
        ConfigError: unless ``0 < init_use < 1``.
    """
    if not 0.0 < float(init_use) < 1.0:
        raise ConfigError(f"init_use must be a probability in (0, 1); got {init_use!r}")
    return math.log(init_use / (1.0 - init_use))


def check_views(views: Mapping[str, Tensor], modalities: Sequence[str]) -> dict[str, Tensor]:
    """Check and collect the policy view of each modality, all sharing ``(B, S)``.

    A 5-d audio view ``(B, S, 1, F, W)`` (the public input layout) gets its ``T = 1`` axis.

    Args:
        views: policy views by modality name; extra keys are ignored.
        modalities: the names to collect, in order.

    Returns:
        ``{name: (B, S, T, C, H, W)}`` in ``modalities`` order.

    Raises:
        ShapeError: naming the modality, if a view is missing, not a 5-/6-d tensor, or its
            ``(B, S)`` differs from the first modality's.
    """
    canon, _, _ = canonical_inputs(views, tuple(modalities), what="policy views", min_dim=5)
    out: dict[str, Tensor] = {}
    for name in modalities:
        x = canon[name]
        if not isinstance(x, Tensor) or x.dim() not in (5, 6):
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(
                f"policy view {name!r} must be a tensor (B, S, T, C, H, W); got {shape}"
            )
        out[name] = x.unsqueeze(2) if x.dim() == 5 else x
    return out


def batch_segments(
    views: Mapping[str, Any], modalities: Sequence[str]
) -> tuple[int, int, torch.device]:
    """``(B, S, device)`` from any view, for policies that do not look at the content.

    Prefers the views of ``modalities``; any object with a ``.shape`` (a tensor, a
    ``SegmentSource``) works.

    Raises:
        ShapeError: if no entry has a shape with at least two dimensions.
    """
    names = [n for n in modalities if n in views] + [k for k in views if k not in modalities]
    for key in names:
        shape = getattr(views[key], "shape", None)
        if shape is not None and len(shape) >= 2:
            device = getattr(views[key], "device", torch.device("cpu"))
            return int(shape[0]), int(shape[1]), torch.device(device)
    raise ShapeError(
        f"cannot read (B, S) from the views: keys {sorted(views)} hold no (B, S, ...) tensor"
    )


class JointFeaturePolicy(nn.Module):
    """Per-modality lightweight extractors followed by the joint FC layers (AdaMML Sec. 3.2,
    reference §2 "Joint feature").

    ``f = ReLU(W2 ReLU(W1 [phi_1(x_1), ..., phi_M(x_M)]))``, computed for all ``B * S``
    segments in one batched call per extractor.

    Args:
        modalities: modality names, in the order of the decisions' M axis.
        backbones: an extractor per modality mapping ``(N, T, C, H, W) -> (N, D_k)`` with a
            ``num_features`` attribute, or a backbone name; ``None`` builds each modality's
            default ``policy_backbone`` with ``adamml.backbones.create_backbone``.
        joint_dim: width of the joint feature (2048 in the paper).

    Raises:
        ConfigError: if an extractor is missing or has no integer ``num_features``.
    """

    needs_views: bool = True
    takes_feature_extractors: bool = True
    """``create_model`` builds a ``backbones`` dict of policy extractors for this class (any
    policy class may set it, plugins included)."""
    tiny_args: Mapping[str, Any] = {"joint_dim": 64}
    """Keyword arguments of this policy in the tiny ``test_`` models (any policy class may set
    it, plugins included; ``create_model`` passes them unless the user gives their own)."""
    thresholds: Tensor
    """``(M,)`` decision thresholds t_m (a buffer, saved in ``state_dict``; zeros by default):
    the gate sees the *use* logit lowered by t_m, so in argmax mode modality m is used on a
    segment iff ``logit_use - logit_skip > t_m`` (`set_thresholds`, `adamml.calibrate`)."""
    stream_mode: str | None = None
    """How the policy decides segment by segment (`adamml.AdaMML.stream`): ``"recurrent"``
    (``step(views, state) -> (decisions (B, M), logits (B, M, 2), state)``, the state a tuple
    of ``(B, ...)`` tensors), ``"independent"`` (each segment on its own: ``forward`` on one
    segment) or ``None`` (unknown: a subclass whose ``decide`` looks across segments cannot
    stream, and `AdaMML.stream` raises a ConfigError)."""

    def __init__(
        self,
        modalities: Sequence[str],
        *,
        backbones: Mapping[str, nn.Module | str] | None = None,
        joint_dim: int = 2048,
    ) -> None:
        super().__init__()
        self.modalities = canonical_modalities(modalities, what="a policy")
        self.backbones = nn.ModuleDict(
            {m: m_net for m, m_net in zip(self.modalities, self._build_backbones(backbones))}
        )
        if int(joint_dim) < 1:
            raise ConfigError(f"joint_dim must be >= 1; got {joint_dim!r}")
        self.joint_dim = int(joint_dim)
        width = sum(int(b.num_features) for b in self.backbones.values())
        self.joint = nn.Sequential(
            nn.Linear(width, self.joint_dim),
            nn.ReLU(inplace=True),
            nn.Linear(self.joint_dim, self.joint_dim),
            nn.ReLU(inplace=True),
        )
        self.register_buffer("thresholds", torch.zeros(len(self.modalities)))

    def _build_backbones(self, backbones: Mapping[str, nn.Module | str] | None) -> list[nn.Module]:
        given = {} if backbones is None else {_canonical(k): v for k, v in backbones.items()}
        if backbones is not None:
            missing = [m for m in self.modalities if m not in given]
            if missing:
                raise ConfigError(
                    f"backbones has no extractor for {missing}; got keys {sorted(backbones)}"
                )
        out: list[nn.Module] = []
        for m in self.modalities:
            net = given.get(m)
            if net is None or isinstance(net, str):
                from ..backbones import create_backbone  # a sibling block; imported on demand
                from ..modalities import get_modality

                name = net if isinstance(net, str) else get_modality(m).policy_backbone
                net = create_backbone(name, modality=m, num_classes=0)
            if not isinstance(net, nn.Module) or not isinstance(
                getattr(net, "num_features", None), int
            ):
                raise ConfigError(
                    f"the {m!r} policy extractor must be an nn.Module with an integer "
                    f"num_features; got {type(net).__name__}"
                )
            out.append(net)
        return out

    # -- decision thresholds (calibration to a budget, docs/calibration.md) ---------------------
    def set_thresholds(self, thresholds: Mapping[str, float] | Sequence[float] | Tensor) -> None:
        """Set the decision thresholds t_m in place (the buffer keeps its device).

        In argmax mode (``eval()``) modality m is used on a segment iff its margin
        ``logit_use - logit_skip`` exceeds t_m: 0 is the trained policy, a positive t_m skips
        more, ``inf`` never uses m, ``-inf`` always does. When sampling, the use logit is lowered
        by t_m, so the use probability becomes ``sigmoid(margin - t_m)``. The logits the policy
        returns and feeds back into its LSTM stay the heads' raw ones.

        Args:
            thresholds: ``{modality: t}`` (modalities left out keep theirs; aliases accepted)
                or M values in ``self.modalities`` order.

        Raises:
            ConfigError: for an unknown modality, a wrong count or a NaN.

        Example:
            >>> policy.set_thresholds({"rgb": 0.5})  # doctest: +SKIP
        """
        values = self.thresholds.detach().cpu().clone()
        if isinstance(thresholds, Mapping):
            for key, value in thresholds.items():
                name = _canonical(key)
                if name not in self.modalities:
                    raise ConfigError(
                        f"threshold for {key!r}, which this policy does not decide; its "
                        f"modalities are {list(self.modalities)}"
                    )
                values[self.modalities.index(name)] = float(value)
        else:
            given = torch.as_tensor(thresholds, dtype=torch.float32).detach().cpu().flatten()
            if given.numel() != len(self.modalities):
                raise ConfigError(
                    f"{given.numel()} thresholds for {len(self.modalities)} modalities "
                    f"{list(self.modalities)}; give one per modality or a dict"
                )
            values = given
        if torch.isnan(values).any():
            raise ConfigError(f"thresholds must be numbers, not NaN; got {values.tolist()}")
        with torch.no_grad():
            self.thresholds.copy_(values)

    def threshold_dict(self) -> dict[str, float]:
        """The decision thresholds as ``{modality: t}``."""
        return {m: float(t) for m, t in zip(self.modalities, self.thresholds.tolist())}

    def _thresholded(self, logits: Tensor) -> Tensor:
        """``(..., M, 2)`` (skip, use) logits with each use logit lowered by its t_m."""
        t = self._finite_thresholds().to(logits)
        return logits - torch.stack([torch.zeros_like(t), t], dim=-1)

    def _finite_thresholds(self) -> Tensor:
        """``thresholds`` with +-inf as +-1e6 (an infinite logit would make the gate's soft
        relaxation NaN; no margin comes near 1e6)."""
        return self.thresholds.clamp(-_NEVER, _NEVER)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # checkpoints written before the thresholds existed decide as t = 0
        state_dict.setdefault(prefix + "thresholds", torch.zeros_like(self.thresholds))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extractors(self) -> dict[str, nn.Module]:
        """The per-modality feature extractors, ``{modality: module}`` (the parts a training
        recipe pre-trains; see `adamml.AdaMML.part_names`)."""
        return dict(self.backbones.items())

    def recurrent_feedback(self) -> dict[nn.LSTMCell, int]:
        """Each recurrent cell and how many of its inputs are fed-back logits, which the paper's
        cost convention leaves out (`adamml.flops`); none here: no recurrent cell."""
        return {}

    def set_decision_mode(self, mode: str) -> None:
        """Let the gates sample (``"sample"``) or take the argmax (``"argmax"``) until the next
        ``train()``/``eval()`` (a frozen policy in joint training; `set_decision_mode`).

        Raises:
            ConfigError: for another mode.
        """
        from .gate import set_decision_mode

        set_decision_mode(self, mode)

    def features(self, views: Mapping[str, Tensor]) -> Tensor:
        """The joint feature of every segment.

        Args:
            views: the policy view of each modality, ``(B, S, T, C, H, W)``.

        Returns:
            ``(B, S, joint_dim)``.

        Raises:
            ShapeError: for missing or inconsistent views, or an extractor output that is not
                ``(B * S, num_features)``.
        """
        checked = check_views(views, self.modalities)
        b, s = next(iter(checked.values())).shape[:2]
        feats = []
        for name, x in checked.items():
            net = self.backbones[name]
            f = net(rearrange(x, "b s t c h w -> (b s) t c h w"))
            if f.dim() != 2 or f.shape != (b * s, net.num_features):
                raise ShapeError(
                    f"the {name!r} policy extractor must return (B*S, num_features) = "
                    f"({b * s}, {net.num_features}); got {tuple(f.shape)}"
                )
            feats.append(f)
        # the decision path stays in float32 under autocast (adamml.precision)
        with full_precision(feats[0].device.type):
            joint = self.joint(torch.cat(feats, dim=-1).float())
        return rearrange(joint, "(b s) d -> b s d", b=b, s=s)

    def forward(
        self, views: Mapping[str, Tensor], *, generator: torch.Generator | None = None
    ) -> PolicyOutput:
        """Decide for every segment of every video.

        Args:
            views: the policy view of each modality in ``self.modalities``.
            generator: optional generator for the gate's noise.

        Returns:
            ``PolicyOutput(decisions (B, S, M), logits (B, S, M, 2))``.
        """
        feats = self.features(views)
        with full_precision(feats.device.type):  # decisions in float32 under autocast
            return self.decide(feats, generator)

    def decide(self, feats: Tensor, generator: torch.Generator | None = None) -> PolicyOutput:
        """Decisions from the joint features ``feats (B, S, joint_dim)``, in float32."""
        raise NotImplementedError(f"{type(self).__name__} must implement decide() or forward()")
