"""timm-backed recognition and policy backbones (registry ``BACKBONES``).

Every backbone takes one modality's segments flattened over batch and segments,
``(N, T, C, H, W)``, and returns ``(N, K)`` logits, or ``(N, D)`` features when
``num_classes == 0``; see [`FrameBackbone`][adamml.backbones.base.FrameBackbone].
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .._checks import check_kwargs
from ..errors import ConfigError
from ..modalities import Modality, get_modality
from ..registries import BACKBONES
from . import zoo
from .base import (
    FrameBackbone,
    FrameBackboneArgs,
    StagedBackbone,
    TimmFrameBackbone,
    temporal_max_pool,
)
from .pretrained import HF_HUB_PREFIX, Pretrained, load_pretrained, timm_pretrained_state
from .weights import adapt_stem, load_backbone_state, load_backbone_weights, read_state_dict
from .zoo import NARROW_POLICY_BACKBONES

__all__ = [
    "create_backbone",
    "list_backbones",
    "resolve_backbone_name",
    "FrameBackbone",
    "FrameBackboneArgs",
    "StagedBackbone",
    "TimmFrameBackbone",
    "temporal_max_pool",
    "adapt_stem",
    "load_backbone_weights",
    "load_backbone_state",
    "load_pretrained",
    "timm_pretrained_state",
    "read_state_dict",
    "HF_HUB_PREFIX",
    "NARROW_POLICY_BACKBONES",
    "Pretrained",
]

TIMM_PREFIX = "timm:"


def list_backbones(pattern: str = "*") -> list[str]:
    """Registered backbone names matching a shell-style ``pattern`` (AdaMML appendix B, Table 6).

    Any timm model is also available as ``"timm:<name>"`` (not listed).

    Example:
        >>> "resnet50_tsn" in list_backbones("resnet*")
        True
    """
    return BACKBONES.list(pattern)


def resolve_backbone_name(name: str) -> str:
    """The registered name for a user's backbone name: ``resnet18`` means ``resnet18_tsn``
    and any other timm model name ``timm:<name>``.

    Raises:
        UnknownBackboneError: for a name that is neither (with close matches).

    Example:
        >>> resolve_backbone_name("resnet18"), resolve_backbone_name("timm:resnet18")
        ('resnet18_tsn', 'timm:resnet18')
    """
    if name in BACKBONES or name.startswith(TIMM_PREFIX):
        return name
    if f"{name}_tsn" in BACKBONES:
        return f"{name}_tsn"
    import timm

    if timm.is_model(name):
        return f"{TIMM_PREFIX}{name}"
    return BACKBONES.resolve(name)  # raises UnknownBackboneError with close matches


def create_backbone(
    name: str,
    *,
    modality: str | Modality,
    num_classes: int = 0,
    pretrained: Pretrained = False,
    stem_init: str = "mean",
    **kwargs: Any,
) -> nn.Module:
    """Build a registered backbone (or ``"timm:<name>"``) for one modality (AdaMML Sec. 3.1).

    Args:
        name: a name from [`list_backbones`][adamml.backbones.list_backbones], e.g.
            ``"resnet50_tsn"``, or ``"timm:<any timm model>"`` (applied per frame).
        modality: the modality (or its name); gives C (``in_chans``) and T.
        num_classes: K; 0 returns ``(N, D)`` features (policy feature extractors).
        pretrained: ``False`` (random), ``True`` (timm's default weights of the body's timm
            architecture, ImageNet for the built-ins, fetched by timm into the Hugging Face
            cache on first use; ``HF_HUB_OFFLINE=1`` reads the cache only),
            ``"hf-hub:<org>/<name>"`` (any timm hub model) or a local weight file
            (``.pth``/``.safetensors``). RGB weights are adapted to C channels.
        stem_init: ``"mean"`` (reference: RGB kernel averaged and copied, no rescaling) or
            ``"timm"`` (timm's ``adapt_input_conv``); used when loading weights with C != 3.
        **kwargs: options of the builder, e.g. ``temporal_pool=False``, ``drop_rate=0.2``.

    Returns:
        A [`FrameBackbone`][adamml.backbones.base.FrameBackbone].

    Raises:
        UnknownBackboneError: for an unknown name (with close matches).
        ConfigError: for an option the builder does not take, an unknown ``stem_init``, or
            ``pretrained=True`` for a body timm has no weights for.
        WeightsUnavailableError: timm's weights are not cached and cannot be downloaded
            (e.g. ``HF_HUB_OFFLINE=1``); the message names the cache and how to fill it.
        CheckpointError: if the weights do not fit.

    Shape:
        ``(N, T, C, H, W) -> (N, K)``.

    Example:
        >>> bb = create_backbone("tiny_tsn", modality="rgb", num_classes=5)
        >>> bb(torch.randn(2, 4, 3, 32, 32)).shape
        torch.Size([2, 5])
    """
    mod = get_modality(modality)
    if stem_init not in ("mean", "timm"):
        raise ConfigError(f"stem_init must be 'mean' or 'timm'; got {stem_init!r}")
    if name.startswith(TIMM_PREFIX):
        timm_name = name[len(TIMM_PREFIX) :]

        def builder(**kw: Any) -> nn.Module:
            return zoo.timm_frame_backbone(timm_name, **kw)

        check_kwargs(
            zoo.timm_frame_backbone,
            kwargs,
            what=f"backbone {name!r}",
            given=("timm_name", "modality", "num_classes"),
        )
    else:
        builder = BACKBONES.get(name)
        check_kwargs(builder, kwargs, what=f"backbone {name!r}", given=("modality", "num_classes"))
    model = builder(modality=mod, num_classes=num_classes, **kwargs)
    load_pretrained(model, pretrained, stem_init=stem_init)
    return model
