"""Max late fusion (AdaMML Table 7 "Max Fusion")."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..registries import FUSIONS
from ._base import Fusion

__all__ = ["MaxFusion"]


@FUSIONS.register("max")
class MaxFusion(Fusion):
    """Elementwise maximum over the selected modalities' logits (AdaMML Table 7 "Max Fusion").

    Skipped modalities: excluded (masked to -inf before the max), so they cannot win with a
    zero logit; a segment with no modality selected gives zeros.

    Args:
        modalities: names in decision (M) order.
        num_classes: K, if known (checked against the inputs).

    Shape:
        per_modality[k] ``(B, S, K)``, decisions ``(B, S, M)`` -> ``(B, S, K)``.

    Example:
        >>> fusion = MaxFusion(("rgb", "audio"))
        >>> fusion.input_kind
        'logits'
    """

    def __init__(self, modalities: Sequence[str], *, num_classes: int | None = None) -> None:
        super().__init__(modalities, num_classes=num_classes)

    def fuse(self, z: Tensor, u: Tensor) -> Tensor:
        """Fuse: ``max_{k selected} u_k z_k``, zeros where nothing is selected."""
        u = u.unsqueeze(-1)
        skipped = (u <= 0.5).expand_as(z)
        best = (z * u).masked_fill(skipped, float("-inf")).amax(dim=2)
        none = skipped.all(dim=2)
        return torch.where(none, torch.zeros_like(best), best)
