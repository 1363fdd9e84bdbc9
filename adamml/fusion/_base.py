"""What every late fusion shares: modality order, input checks and stacking (AdaMML Sec. 3.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from .._checks import canonical_inputs, canonical_modalities
from ..errors import ConfigError, ShapeError

__all__ = ["Fusion"]


class Fusion(nn.Module):
    """Base class of the late fusions: combine per-modality segment outputs into logits.

    Every fusion receives the decisions so that it can treat a skipped modality explicitly
    (AdaMML Sec. 3.2: a skipped modality contributes nothing to the segment's prediction).

    The decisions are used as a **detached** 0/1 mask. In AdaMML the gradient reaches the policy
    through the router, which multiplies each modality's output by its straight-through decision
    (reference §4); multiplying by the live decisions again here would count that path twice
    and double the policy's gradient relative to the reference. On 0/1 decisions the mask is
    idempotent, so the values are the same whether or not the inputs were already masked.

    Args:
        modalities: names in decision (M) order; ``sound`` is accepted for ``audio``.
        num_classes: K, if known; checked against the inputs.

    Attributes:
        modalities: the canonical names, in M order.
        input_kind: ``"logits"`` or ``"features"``: what the router must produce.
        output_dim: K, or ``None`` when it is taken from the inputs.
        segmentwise: each segment is fused on its own (True for every built-in), so the video
            logits, the mean of the segment logits over S, can be computed segment by segment
            as a running mean (`AdaMML.stream`). A fusion that mixes segments (attention over
            time) sets it False and cannot stream.

    Shape:
        - per_modality[k]: ``(B, S, K)`` (``(B, S, D_k)`` for feature fusions)
        - decisions: ``(B, S, M)``
        - output: ``(B, S, K)``
    """

    input_kind: str = "logits"
    segmentwise: bool = True

    def __init__(self, modalities: Sequence[str], *, num_classes: int | None = None) -> None:
        super().__init__()
        self.modalities: tuple[str, ...] = canonical_modalities(modalities, what="a fusion")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes <= 0):
            raise ConfigError(f"num_classes must be a positive int; got {num_classes!r}")
        self.num_classes = num_classes

    @property
    def output_dim(self) -> int | None:
        """K, the width of the fused output (``None``: the same as the inputs)."""
        return self.num_classes

    @staticmethod
    def mask(decisions: Tensor, dtype: torch.dtype) -> Tensor:
        """The decisions as a detached mask of ``dtype`` (see the class docstring for why)."""
        return decisions.detach().to(dtype)

    def collect(self, per_modality: Mapping[str, Tensor], decisions: Tensor) -> list[Tensor]:
        """Per-modality tensors in M order, after checking them against ``decisions``.

        Raises:
            ShapeError: if ``decisions`` is not ``(B, S, M)``, a modality is missing, or a
                tensor is not ``(B, S, *)`` with the decisions' B and S.
        """
        m = len(self.modalities)
        if not isinstance(decisions, Tensor) or decisions.dim() != 3 or decisions.shape[-1] != m:
            got = tuple(decisions.shape) if isinstance(decisions, Tensor) else type(decisions)
            raise ShapeError(
                f"decisions must be (B, S, M={m}) for {list(self.modalities)}; got {got}"
            )
        canon, _, _ = canonical_inputs(per_modality, self.modalities, what="per_modality")
        out: list[Tensor] = []
        for name in self.modalities:
            z = canon[name]
            if z.dim() != 3 or z.shape[:2] != decisions.shape[:2]:
                raise ShapeError(
                    f"per_modality[{name!r}] has shape {tuple(z.shape)}; expected (B, S, *) with "
                    f"B, S = {tuple(decisions.shape[:2])} from decisions"
                )
            out.append(z)
        return out

    def stack(self, per_modality: Mapping[str, Tensor], decisions: Tensor) -> Tensor:
        """``(B, S, M, K)`` stacked logits, checked to share K (and ``num_classes``)."""
        zs = self.collect(per_modality, decisions)
        widths = {z.shape[-1] for z in zs}
        if len(widths) != 1:
            raise ShapeError(
                f"all modalities must give the same number of classes; got "
                f"{dict(zip(self.modalities, (z.shape[-1] for z in zs)))}"
            )
        if self.num_classes is not None and widths != {self.num_classes}:
            raise ShapeError(
                f"fusion expects K={self.num_classes} classes; inputs have {widths.pop()}"
            )
        return torch.stack(zs, dim=2)

    def forward(self, per_modality: Mapping[str, Tensor], decisions: Tensor) -> Tensor:
        """Fuse the per-modality segment outputs into segment logits.

        Args:
            per_modality: ``(B, S, K)`` logits per modality.
            decisions: ``(B, S, M)`` 0/1 decisions.

        Returns:
            ``(B, S, K)`` fused segment logits.

        Raises:
            ShapeError: on missing modalities or disagreeing shapes.
        """
        z = self.stack(per_modality, decisions)
        return self.fuse(z, self.mask(decisions, z.dtype))

    def fuse(self, z: Tensor, u: Tensor) -> Tensor:
        """Combine stacked outputs ``z (B, S, M, K)`` under the 0/1 mask ``u (B, S, M)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement fuse() or forward()")

    def extra_repr(self) -> str:
        return f"modalities={self.modalities}, output_dim={self.output_dim}"
