"""The no-LSTM policy ablation: each segment decided from its own joint feature."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registries import POLICIES
from ..types import PolicyOutput
from .base import JointFeaturePolicy, init_use_bias
from .gate import GumbelGate

__all__ = ["PolicyFC"]


@POLICIES.register("fc", aliases=("no_lstm",))
class PolicyFC(JointFeaturePolicy):
    """A policy without the LSTM: per-modality heads on each segment's joint feature (AdaMML
    Sec. 4.3 "Effectiveness of LSTM"; reference §2 "No-LSTM variant").

    ```
    views[m] --extractor_m--> concat --> joint FCs --> f (B,S,J) --heads[m]--> z (B,S,M,2)
    decisions = gate(z - (0, t))[..., 1]       segments are independent; t: thresholds
    ```

    The reference trains this variant whenever ``--causality_modeling lstm`` is forgotten; the
    paper reports it 1.35 points below the LSTM policy on Kinetics-Sounds.

    Args:
        modalities: modality names, in the order of the decisions' M axis.
        backbones: per-modality extractors (see [`PolicyLSTM`][adamml.policies.PolicyLSTM]).
        joint_dim: width J of the joint feature (2048).
        gate: the Gumbel gate; ``None`` makes ``GumbelGate(tau=5.0)``.
        init_use: the probability of using each modality at initialisation (0.9, see
            [`PolicyLSTM`][adamml.policies.PolicyLSTM]); ``None`` keeps PyTorch's.

    Shape:
        ``views[m]: (B, S, T', C, H', W')`` ->
        ``PolicyOutput(decisions (B, S, M), logits (B, S, M, 2))``.

    Raises:
        ConfigError: for missing extractors or a gate of the wrong type.
        ShapeError: for missing views or views that disagree on ``(B, S)``.

    Example:
        >>> import torch
        >>> policy = PolicyFC(("rgb", "flow"), joint_dim=8,
        ...                   backbones={"rgb": "tiny_policy", "flow": "tiny_policy"})
        >>> policy({"rgb": torch.randn(1, 3, 2, 3, 24, 24),
        ...         "flow": torch.randn(1, 3, 2, 10, 24, 24)}).decisions.shape
        torch.Size([1, 3, 2])
    """

    stream_mode = "independent"  # segments are decided on their own

    def __init__(
        self,
        modalities: Sequence[str],
        *,
        backbones: Mapping[str, nn.Module | str] | None = None,
        joint_dim: int = 2048,
        gate: GumbelGate | None = None,
        init_use: float | None = 0.9,
    ) -> None:
        super().__init__(modalities, backbones=backbones, joint_dim=joint_dim)
        if gate is not None and not isinstance(gate, GumbelGate):
            raise ConfigError(f"gate must be a GumbelGate; got {type(gate).__name__}")
        self.heads = nn.ModuleList(nn.Linear(self.joint_dim, 2) for _ in self.modalities)
        init_use_bias(self.heads, init_use)
        self.gate = gate if gate is not None else GumbelGate()

    def decide(self, feats: Tensor, generator: torch.Generator | None = None) -> PolicyOutput:
        """Each segment on its own: ``heads[m](f)`` for every segment of ``feats (B, S, J)``."""
        logits = torch.stack([head(feats) for head in self.heads], dim=2)
        decisions = self.gate(self._thresholded(logits), generator=generator)[..., 1]
        return PolicyOutput(decisions, logits)

    def extra_repr(self) -> str:
        return f"modalities={self.modalities}, joint_dim={self.joint_dim}"
