"""Average late fusion: the paper's "Average Fusion" baseline (AdaMML Table 7)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from ..registries import FUSIONS
from ._base import Fusion

__all__ = ["AverageFusion"]


@FUSIONS.register("average", aliases=("mean",))
class AverageFusion(Fusion):
    """Mean of the masked modality logits (AdaMML Table 7 "Average Fusion").

    Skipped modalities: by default, as in the reference without learnable weights (§3
    "Fusion"), the sum of u_k z_k is always divided by M, so a skipped modality counts as a
    zero vector. With ``renormalize=True`` the sum is divided by the number of selected
    modalities instead; a segment with none selected gives zeros.

    Args:
        modalities: names in decision (M) order.
        renormalize: divide by the number of selected modalities rather than by M.
        num_classes: K, if known (checked against the inputs).

    Shape:
        per_modality[k] ``(B, S, K)``, decisions ``(B, S, M)`` -> ``(B, S, K)``.

    Example:
        >>> fusion = AverageFusion(("rgb", "audio"), renormalize=True)
        >>> fusion.output_dim is None
        True
    """

    def __init__(
        self,
        modalities: Sequence[str],
        *,
        renormalize: bool = False,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(modalities, num_classes=num_classes)
        self.renormalize = renormalize

    def fuse(self, z: Tensor, u: Tensor) -> Tensor:
        """Fuse: ``sum_k u_k z_k / M`` (or ``/ max(1, sum_k u_k)`` with ``renormalize``)."""
        total = (z * u.unsqueeze(-1)).sum(dim=2)
        if not self.renormalize:
            return total / len(self.modalities)
        # clamp: a segment with nothing selected has total == 0 and stays 0
        return total / u.sum(dim=-1, keepdim=True).clamp(min=1.0)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, renormalize={self.renormalize}"
