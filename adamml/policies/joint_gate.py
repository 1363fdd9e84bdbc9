"""The "policy design" ablation (AdaMML Sec. 4.3): one decision per segment, over all 2^M
modality combinations or, as in the paper, all-or-nothing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from ..errors import ConfigError
from ..registries import POLICIES
from .base import use_log_odds
from .gate import GumbelGate
from .lstm import PolicyLSTM

__all__ = ["JointGatePolicy", "combination_bits", "all_or_nothing_bits", "JOINT_GATE_MODES"]

_MAX_MODALITIES = 12
JOINT_GATE_MODES = ("combinations", "all_or_nothing")
"""``mode`` of [`JointGatePolicy`][adamml.policies.JointGatePolicy]: every combination of
modalities, or the paper's one binary decision (all modalities or none)."""


def combination_bits(num_modalities: int) -> Tensor:
    """The ``(2**M, M)`` 0/1 table decoding a combination index: bit k of row i is
    ``(i >> k) & 1``, so modality k is used in combination i when that bit is 1.

    Example:
        >>> combination_bits(2).tolist()
        [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    """
    index = torch.arange(2**num_modalities).unsqueeze(1)
    return ((index >> torch.arange(num_modalities)) & 1).float()


def all_or_nothing_bits(num_modalities: int) -> Tensor:
    """The ``(2, M)`` table of the paper's joint decision: row 0 skips every modality, row 1
    uses every modality.

    Example:
        >>> all_or_nothing_bits(3).tolist()
        [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    return torch.stack([torch.zeros(num_modalities), torch.ones(num_modalities)])


@POLICIES.register("joint_gate", aliases=("single_fc",))
class JointGatePolicy(PolicyLSTM):
    """One gate per segment for all modalities together (AdaMML Sec. 4.3 "Policy Design").

    The LSTM part is that of [`PolicyLSTM`][adamml.policies.PolicyLSTM]; instead of M heads
    with 2 logits, one head scores N joint choices, a
    [`GumbelGate`][adamml.policies.GumbelGate] picks one, and the choice is decoded to M bits
    by a ``(N, M)`` table (``bits``):

    * ``mode="all_or_nothing"``: the paper's design, "a single FC layer ... which outputs
      the binary decisions where 1 indicate the use of both modalities and 0 indicate
      skipping of both": ``Linear(hidden, 2)``, N = 2, every modality used or none
      (`all_or_nothing_bits`), so the decisions are equal across modalities on every
      segment;
    * ``mode="combinations"`` (default, kept from before): ``Linear(hidden, 2**M)`` scores
      every combination (combination i uses modality k when ``(i >> k) & 1``;
      `combination_bits`). For two modalities it also has "RGB only" and "audio only", so it
      contains the paper's variant. The reference has only leftovers of this design (its
      ``convert_index_to_decisions`` uses the same decoding).

    The decisions are the selected one-hot times the bit table, so straight-through gradients
    reach the head. The decision
    thresholds t_m (``thresholds``) lower each combination's score by the sum of the t_m of the
    modalities it uses: the per-modality gates' rule (use iff margin > t_m) for a joint choice.

    ``logits`` in the output are the per-modality marginal log-probabilities
    ``(log P(skip_k), log P(use_k))``, each a logsumexp of ``log_softmax(head)`` over the
    combinations with bit k = 0 or 1; their softmax is the marginal keep-probability, so the
    output fits where ``(B, S, M, 2)`` logits are expected (all-or-nothing: the same for every
    modality). With ``feed_logits`` the LSTM gets the previous step's N raw scores. The cost
    accounting, calibration (a joint choice pays the sum of the thresholds of the modalities
    it uses), streaming (``step``) and checkpoints work alike in both modes; the head's width
    differs, so a checkpoint loads into the mode it was trained in (``policy_args.mode`` is
    kept in the checkpoint's ``model_args``).

    Args:
        modalities: modality names, in the order of the decisions' M axis (at most 12 with
            ``mode="combinations"``).
        backbones: per-modality extractors (see [`PolicyLSTM`][adamml.policies.PolicyLSTM]).
        joint_dim: width J of the joint feature (2048).
        hidden_size: LSTM width (256).
        gate: the Gumbel gate over the ``2**M`` combinations; ``None`` makes
            ``GumbelGate(tau=5.0)``.
        feed_logits: feed the previous step's combination scores back into the LSTM.
        init_use: start with every modality used with probability ``init_use`` (see
            [`PolicyLSTM`][adamml.policies.PolicyLSTM]).
        mode: ``"combinations"`` or ``"all_or_nothing"`` (`JOINT_GATE_MODES`).

    Shape:
        ``views[m]: (B, S, T', C, H', W')`` ->
        ``PolicyOutput(decisions (B, S, M), logits (B, S, M, 2))``.

    Raises:
        ConfigError: for an unknown ``mode``, more than 12 modalities with
            ``"combinations"``, bad sizes or missing extractors.
        ShapeError: for missing views or views that disagree on ``(B, S)``.

    Example:
        >>> import torch
        >>> policy = JointGatePolicy(("rgb", "audio"), joint_dim=8, hidden_size=8,
        ...     backbones={"rgb": "tiny_policy", "audio": "tiny_audio_policy"})
        >>> out = policy({"rgb": torch.randn(2, 3, 2, 3, 24, 24),
        ...               "audio": torch.randn(2, 3, 1, 1, 32, 32)})
        >>> out.decisions.shape, policy.head.out_features
        (torch.Size([2, 3, 2]), 4)
        >>> paper = JointGatePolicy(("rgb", "audio"), joint_dim=8, hidden_size=8,
        ...     backbones={"rgb": "tiny_policy", "audio": "tiny_audio_policy"},
        ...     mode="all_or_nothing")
        >>> paper.head.out_features
        2
    """

    bits: Tensor

    def __init__(
        self,
        modalities: Sequence[str],
        *,
        backbones: Mapping[str, nn.Module | str] | None = None,
        joint_dim: int = 2048,
        hidden_size: int = 256,
        gate: GumbelGate | None = None,
        feed_logits: bool = True,
        init_use: float | None = 0.9,
        mode: str = "combinations",
    ) -> None:
        if mode not in JOINT_GATE_MODES:
            raise ConfigError(
                f"joint_gate mode must be one of {', '.join(JOINT_GATE_MODES)}; got {mode!r}"
            )
        self.mode = mode  # read by _build_heads, which PolicyLSTM.__init__ calls
        super().__init__(
            modalities,
            backbones=backbones,
            joint_dim=joint_dim,
            hidden_size=hidden_size,
            gate=gate,
            feed_logits=feed_logits,
            init_use=init_use,
        )

    @property
    def num_combinations(self) -> int:
        """N, the joint choices: ``2 ** M``, or 2 for ``"all_or_nothing"``.

        Raises:
            ConfigError: for more than 12 modalities with ``"combinations"`` (read before
                any layer is that wide).
        """
        count = len(self.modalities)
        if self.mode == "all_or_nothing":
            return 2
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
        table = all_or_nothing_bits if self.mode == "all_or_nothing" else combination_bits
        self.register_buffer("bits", table(len(self.modalities)), persistent=False)

    def _init_use(self, init_use: float | None) -> None:
        """All modalities on with probability ``init_use``, the other choices equally (the
        last row of both tables uses every modality)."""
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

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode!r}"
