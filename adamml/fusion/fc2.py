"""Feature-level fusion through two hidden layers (AdaMML Table 7 "FC2 Fusion")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError, ShapeError
from ..registries import FUSIONS
from ._base import Fusion, canonical_modalities

__all__ = ["FC2Fusion"]


@FUSIONS.register("fc2")
class FC2Fusion(Fusion):
    """Concatenate per-modality features and classify with an MLP (AdaMML Table 7 "FC2 Fusion").

    ```
    [u_1 f_1, ..., u_M f_M] (B, S, sum D_k) -> Linear -> ReLU -> Linear(h, h) -> ReLU
                                            -> Dropout -> Linear(h, K) -> (B, S, K)
    ```

    The layer sizes follow the reference (§3 "Fusion", ``--fusion_point fc2``). Unlike the
    reference, which raises whenever decisions are passed, this fusion accepts them, so it can
    be used inside AdaMML: the router is asked for features (``input_kind == "features"``).

    Skipped modalities: their feature block is zero (the features are multiplied by u_k), so the
    MLP still sees a fixed-width vector; a segment with nothing selected gives the MLP's output
    for an all-zero input (its biases), not zeros.

    Args:
        modalities: names in decision (M) order.
        feature_dims: D_k per modality (the backbones' ``num_features``).
        num_classes: K.
        hidden: width of the two hidden layers (2048 in the paper).
        dropout: dropout probability before the last layer.

    Raises:
        ConfigError: if ``feature_dims`` lacks a modality or has a non-positive width.

    Shape:
        per_modality[k] ``(B, S, D_k)``, decisions ``(B, S, M)`` -> ``(B, S, K)``.

    Example:
        >>> fusion = FC2Fusion(("rgb", "audio"), {"rgb": 8, "audio": 4}, num_classes=3, hidden=16)
        >>> fusion.mlp[0].in_features
        12
    """

    input_kind = "features"

    def __init__(
        self,
        modalities: Sequence[str],
        feature_dims: Mapping[str, int],
        num_classes: int,
        *,
        hidden: int = 2048,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(modalities, num_classes=num_classes)
        dims = dict(zip(canonical_modalities(tuple(feature_dims)), feature_dims.values()))
        for name in self.modalities:
            d = dims.get(name)
            if not isinstance(d, int) or d <= 0:
                raise ConfigError(
                    f"feature_dims needs a positive int for {name!r}; got {dict(feature_dims)}"
                )
        self.feature_dims: dict[str, int] = {n: dims[n] for n in self.modalities}
        self.mlp = nn.Sequential(
            nn.Linear(sum(self.feature_dims.values()), hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, per_modality: Mapping[str, Tensor], decisions: Tensor) -> Tensor:
        """``MLP(concat_k u_k f_k)``: features ``(B, S, D_k)`` in, segment logits out.

        Raises:
            ShapeError: as `Fusion.forward`, and for a width other than ``feature_dims``.
        """
        feats = self.collect(per_modality, decisions)
        blocks = []
        for k, (name, f) in enumerate(zip(self.modalities, feats)):
            if f.shape[-1] != self.feature_dims[name]:
                raise ShapeError(
                    f"per_modality[{name!r}] has {f.shape[-1]} features; FC2Fusion was built "
                    f"for {self.feature_dims[name]}"
                )
            blocks.append(f * self.mask(decisions[..., k : k + 1], f.dtype))
        return self.mlp(torch.cat(blocks, dim=-1))

    def extra_repr(self) -> str:
        return f"modalities={self.modalities}, feature_dims={self.feature_dims}"
