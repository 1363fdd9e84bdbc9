"""Class-wise weighted late fusion (AdaMML Table 7 "Class-wise Weighted Fusion")."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import einsum
from torch import Tensor, nn

from ..registries import FUSIONS
from ._base import Fusion

__all__ = ["ClasswiseFusion"]


@FUSIONS.register("classwise", aliases=("class_wise",))
class ClasswiseFusion(Fusion):
    """A learned weight per modality and class: ``sum_k w_{k,c} u_k z_{k,c}`` (AdaMML Table 7).

    The reference has only a dead branch for this; here ``weight`` is an ``(M, K)`` parameter
    initialised to 1/M (so at initialisation it equals average fusion), used raw.

    Skipped modalities: their term u_k z_k is zero; weights are not renormalised.

    Args:
        modalities: names in decision (M) order.
        num_classes: K.

    Shape:
        per_modality[k] ``(B, S, K)``, decisions ``(B, S, M)`` -> ``(B, S, K)``.

    Example:
        >>> ClasswiseFusion(("rgb", "audio"), num_classes=3).weight.shape
        torch.Size([2, 3])
    """

    def __init__(self, modalities: Sequence[str], num_classes: int) -> None:
        super().__init__(modalities, num_classes=num_classes)
        m = len(self.modalities)
        self.weight = nn.Parameter(torch.full((m, num_classes), 1.0 / m))

    def fuse(self, z: Tensor, u: Tensor) -> Tensor:
        """Fuse: ``sum_k w_{k,c} u_k z_{k,c}``."""
        w = self.weight.to(z.dtype)
        return einsum(z, u, w, "b s m k, b s m, m k -> b s k")
