"""Late fusion with learnable modality weights: the paper's "weighted fusion" (AdaMML Sec. 3.1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import einsum
from torch import Tensor, nn

from ..registries import FUSIONS
from ._base import Fusion

__all__ = ["LearnableLateFusion"]


@FUSIONS.register("learnable", aliases=("weighted",))
class LearnableLateFusion(Fusion):
    """Weighted sum of the selected modalities' logits, weights learned (AdaMML Sec. 3.1, Table 7).

    As in the reference (§3 "Fusion"), the parameter ``weight`` holds M-1 free values
    initialised to 1/M and the last modality gets the complement, so the full weights are
    ``[w_1, ..., w_{M-1}, 1 - sum(w)]``. They are used raw: they sum to 1 but are neither
    clamped nor restricted to [0, 1]. ``weight`` corresponds to the reference checkpoint's
    ``main_net.lf_weights``. With ``normalized=True`` the weights are instead a softmax over M
    free parameters (initialised equal), so they stay positive.

    Skipped modalities: their term u_k z_k is zero and the weights are **not** renormalised, so
    a segment that uses only audio gives w_audio z_audio (reference §4).

    Args:
        modalities: names in decision (M) order.
        normalized: softmax weights over M parameters instead of the reference's affine ones.
        num_classes: K, if known (checked against the inputs).

    Shape:
        per_modality[k] ``(B, S, K)``, decisions ``(B, S, M)`` -> ``(B, S, K)``:
        ``sum_k w_k u_k z_k``.

    Example:
        >>> fusion = LearnableLateFusion(("rgb", "audio"))
        >>> fusion.weights.tolist()
        [0.5, 0.5]
    """

    def __init__(
        self, modalities: Sequence[str], *, normalized: bool = False, num_classes: int | None = None
    ) -> None:
        super().__init__(modalities, num_classes=num_classes)
        m = len(self.modalities)
        self.normalized = normalized
        init = torch.zeros(m) if normalized else torch.full((m - 1,), 1.0 / m)
        self.weight = nn.Parameter(init)

    @property
    def weights(self) -> Tensor:
        """The full ``(M,)`` weight vector, in ``modalities`` order."""
        if self.normalized:
            return self.weight.softmax(dim=0)
        return torch.cat([self.weight, 1.0 - self.weight.sum(dim=0, keepdim=True)])

    def fuse(self, z: Tensor, u: Tensor) -> Tensor:
        """Fuse: ``sum_k w_k u_k z_k`` per segment."""
        w = self.weights.to(z.dtype)
        return einsum(z, u, w, "b s m k, b s m, m -> b s k")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, normalized={self.normalized}"
