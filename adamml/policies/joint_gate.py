"""The "policy design" ablation: one decision over all 2^M modality combinations."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from ..errors import ConfigError
from ..registries import POLICIES
from .base import use_log_odds
from .lstm import PolicyLSTM

__all__ = ["JointGatePolicy", "combination_bits"]

_MAX_MODALITIES = 12


def combination_bits(num_modalities: int) -> Tensor:
    """The ``(2**M, M)`` 0/1 table decoding a combination index: bit k of row i is
    ``(i >> k) & 1``, so modality k is used in combination i when that bit is 1.

    Example:
        >>> combination_bits(2).tolist()
        [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    """
    index = torch.arange(2**num_modalities).unsqueeze(1)
    return ((index >> torch.arange(num_modalities)) & 1).float()


@POLICIES.register("joint_gate", aliases=("single_fc",))
class JointGatePolicy(PolicyLSTM):
    """One gate over all modality combinations per segment (AdaMML Sec. 4.3 "Policy Design").

    The LSTM part is that of [`PolicyLSTM`][adamml.policies.PolicyLSTM]; instead of M heads
    with 2 logits, one head ``Linear(hidden, 2**M)`` scores every combination, a
    [`GumbelGate`][adamml.policies.GumbelGate] picks one, and the index is decoded to M bits
    (combination i uses modality k when ``(i >> k) & 1``). For two modalities the paper's
    variant only has "both" or "none"; this one learns which of the four combinations to
    use, which contains it. The reference has only leftovers of this design (its
    ``convert_index_to_decisions`` uses the same decoding). The decisions are the selected
    one-hot times the bit table, so straight-through gradients reach the head. The decision
    thresholds t_m (``thresholds``) lower each combination's score by the sum of the t_m of the
    modalities it uses: the per-modality gates' rule (use iff margin > t_m) for a joint choice.

    ``logits`` in the output are the per-modality marginal log-probabilities
    ``(log P(skip_k), log P(use_k))``, each a logsumexp of ``log_softmax(head)`` over the
    combinations with bit k = 0 or 1; their softmax is the marginal keep-probability, so the
    output fits where ``(B, S, M, 2)`` logits are expected. With ``feed_logits`` the LSTM gets
    the previous step's ``2**M`` raw combination scores.

    Args:
        modalities: modality names, in the order of the decisions' M axis (at most 12).
        backbones: per-modality extractors (see [`PolicyLSTM`][adamml.policies.PolicyLSTM]).
        joint_dim: width J of the joint feature (2048).
        hidden_size: LSTM width (256).
        gate: the Gumbel gate over the ``2**M`` combinations; ``None`` makes
            ``GumbelGate(tau=5.0)``.
        feed_logits: feed the previous step's combination scores back into the LSTM.

    Shape:
        ``views[m]: (B, S, T', C, H', W')`` ->
        ``PolicyOutput(decisions (B, S, M), logits (B, S, M, 2))``.

    Raises:
        ConfigError: for more than 12 modalities, bad sizes or missing extractors.
        ShapeError: for missing views or views that disagree on ``(B, S)``.

    Example:
        >>> import torch
        >>> policy = JointGatePolicy(("rgb", "audio"), joint_dim=8, hidden_size=8,
        ...     backbones={"rgb": "tiny_policy", "audio": "tiny_audio_policy"})
        >>> out = policy({"rgb": torch.randn(2, 3, 2, 3, 24, 24),
        ...               "audio": torch.randn(2, 3, 1, 1, 32, 32)})
        >>> out.decisions.shape, policy.head.out_features
        (torch.Size([2, 3, 2]), 4)
    """

    bits: Tensor

    @property
    def num_combinations(self) -> int:
        """``2 ** M``.

        Raises:
            ConfigError: for more than 12 modalities (read before any layer is that wide).
        """
        count = len(self.modalities)
        if count > _MAX_MODALITIES:
            raise ConfigError(
                f"JointGatePolicy scores 2**M combinations; M = {count} > {_MAX_MODALITIES} "
                "is too many (use PolicyLSTM)"
            )
        return 2**count

    def _feedback_size(self) -> int:
        return self.num_combinations

    def _build_heads(self) -> None:
        self.head = nn.Linear(self.hidden_size, self.num_combinations)
        self.register_buffer("bits", combination_bits(len(self.modalities)), persistent=False)

    def _init_use(self, init_use: float | None) -> None:
        """All modalities on with probability ``init_use``, the other combinations equally."""
        if init_use is None:
            return
        n = self.num_combinations  # the last combination has every bit set
        with torch.no_grad():
            self.head.bias.zero_()
            self.head.bias[n - 1] = use_log_odds(init_use) + math.log(n - 1)

    def _raw_logits(self, h: Tensor) -> Tensor:
        return self.head(h)

    def _gate_step(self, raw: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        bits = self.bits.to(raw)
        # a combination's score pays the thresholds of the modalities it uses
        choice = self.gate(raw - bits @ self._finite_thresholds().to(raw), generator=generator)
        decisions = choice @ bits  # (B, M)
        logp = torch.log_softmax(raw, dim=-1)
        # marginal log P(bit k = 0) and log P(bit k = 1): logsumexp over the matching rows
        masked = rearrange(logp, "b n -> b n 1 1") + torch.stack(
            [
                torch.where(bits == 0, 0.0, float("-inf")),
                torch.where(bits == 1, 0.0, float("-inf")),
            ],
            dim=-1,
        )  # (B, 2**M, M, 2)
        return decisions, torch.logsumexp(masked, dim=1)
