"""The late-fusion family: combine per-modality segment outputs into segment logits.

AdaMML (Sec. 3.1) fuses its sub-networks by late fusion with learnable weights; Table 7 compares
average, class-wise weighted, max and FC2 fusion. Every fusion takes the decisions as well, so
each states how it treats a skipped modality. Built-ins register in
[`FUSIONS`][adamml.registries.FUSIONS]:

| name | class | input |
| --- | --- | --- |
| `learnable` (`weighted`) | [`LearnableLateFusion`][adamml.fusion.LearnableLateFusion] | logits |
| `average` (alias `mean`) | [`AverageFusion`][adamml.fusion.AverageFusion] | logits |
| `classwise` (alias `class_wise`) | [`ClasswiseFusion`][adamml.fusion.ClasswiseFusion] | logits |
| `max` | [`MaxFusion`][adamml.fusion.MaxFusion] | logits |
| `fc2` | [`FC2Fusion`][adamml.fusion.FC2Fusion] | features |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._checks import check_kwargs
from ..registries import FUSIONS
from ._base import Fusion
from .average import AverageFusion
from .classwise import ClasswiseFusion
from .fc2 import FC2Fusion
from .learnable import LearnableLateFusion
from .max import MaxFusion

__all__ = [
    "Fusion",
    "LearnableLateFusion",
    "AverageFusion",
    "ClasswiseFusion",
    "MaxFusion",
    "FC2Fusion",
    "create_fusion",
    "list_fusions",
]


def create_fusion(name: str, modalities: Sequence[str], **kwargs: Any) -> Fusion:
    """Build the fusion registered as ``name`` (AdaMML Table 7).

    Args:
        name: a registered fusion name or alias, e.g. ``"learnable"``, ``"max"``.
        modalities: names in decision (M) order.
        **kwargs: the fusion's own keyword arguments (e.g. ``num_classes``, ``renormalize``).

    Returns:
        The fusion module.

    Raises:
        UnknownFusionError: for an unregistered name (with close matches).
        ConfigError: if ``kwargs`` do not fit the fusion's signature (names the accepted ones).

    Example:
        >>> create_fusion("average", modalities=("rgb", "audio"), renormalize=True)
        AverageFusion(modalities=('rgb', 'audio'), output_dim=None, renormalize=True)
    """
    cls = FUSIONS.get(name)
    check_kwargs(cls, kwargs, what=f"fusion {name!r} ({cls.__name__})")
    return cls(modalities, **kwargs)


def list_fusions(pattern: str = "*") -> list[str]:
    """Registered fusion names matching a shell-style ``pattern``, sorted (AdaMML Table 7).

    Example:
        >>> "learnable" in list_fusions()
        True
    """
    return FUSIONS.list(pattern)
