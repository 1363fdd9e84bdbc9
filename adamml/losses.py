"""The efficiency term of the AdaMML loss (AdaMML Eq. 4), as the reference computes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .errors import ConfigError, ShapeError
from .modalities import Modality, get_modality
from .modalities import canonical_name as _canonical

__all__ = ["EfficiencyLoss", "EfficiencyTerms", "default_cost_weights"]

# The reference README's efficiency-loss weights (reference-implementation.md §5), by the
# recognition modalities in decision order.
REFERENCE_COST_WEIGHTS: dict[tuple[str, ...], dict[str, float]] = {
    ("rgb", "audio"): {"rgb": 1.0, "audio": 0.05},
    ("rgb", "flow"): {"rgb": 1.0, "flow": 1.0},
    ("rgb", "audio", "flow"): {"rgb": 0.5, "audio": 0.05, "flow": 0.8},
}


def default_cost_weights(
    modalities: Sequence[str], specs: Mapping[str, Modality] | None = None
) -> dict[str, float]:
    """The default lambda_k of AdaMML Eq. 4 for ``modalities``: the reference's table for its
    three combinations, else each modality's ``cost_weight``.

    Example:
        >>> default_cost_weights(("rgb", "audio"))
        {'rgb': 1.0, 'audio': 0.05}
    """
    names = tuple(_canonical(m) for m in modalities)
    if names in REFERENCE_COST_WEIGHTS:
        return dict(REFERENCE_COST_WEIGHTS[names])
    specs = specs or {}
    return {m: (specs.get(m) or get_modality(m)).cost_weight for m in names}


PENALTIES = ("blockdrop", "mean")


class EfficiencyTerms(NamedTuple):
    """The parts of [`EfficiencyLoss`][adamml.losses.EfficiencyLoss], for logging.

    Attributes:
        loss: scalar, ``cost + gamma_term``.
        cost: scalar, the selection penalty ``sum_k lambda_k * ...``.
        gamma_term: scalar, ``mean_n((1 - c_n) * gamma)`` (0 for ``penalty="mean"``); no gradient.
        correct: ``(B,)`` bool, c_n (all True for ``penalty="mean"`` without a target).
        fractions: per modality, the detached fraction of decisions that selected it (mean over
            B and every middle axis, e.g. S), i.e. the selection rate.
    """

    loss: Tensor
    cost: Tensor
    gamma_term: Tensor
    correct: Tensor
    fractions: dict[str, Tensor]


class EfficiencyLoss(nn.Module):
    """The efficiency term of AdaMML Eq. 4, as the reference implements it (reference §5).

    With ``penalty="blockdrop"`` (default), for video n with prediction ``logits_n``:

    - ``c_n = 1[argmax(logits_n.detach()) is correct]`` (multi-hot targets: the argmax class is
      one of the positives);
    - ``f_{n,k} = mean_s u_{n,s,k}``, the fraction of segments that selected modality k;
    - ``loss = sum_k lambda_k * mean_n(c_n * f_{n,k}^2) + mean_n((1 - c_n) * gamma)``.

    The decisions may have any shape ``(B, ..., M)``: ``f_{n,k}`` is then the mean over every
    axis between B and M (AdaMML's ``(B, S, M)`` averages over segments; ``(B, M)``, one
    decision per sample, uses the decision itself; ``(B, S, L, M)`` averages over S and L). With
    a single modality (``len(modalities) == 1``) the M axis may be left out: ``(B,)`` or
    ``(B, ...)`` is read as ``(B, ..., 1)``. That is unambiguous: a trailing axis of size 1
    gives the same fractions whether it is read as M or as one more middle axis. With two or
    more modalities the last axis is always M.

    Note:
        The gamma branch carries **no gradient** in this formulation: c_n is a detached
        indicator, so ``(1 - c_n) * gamma`` is a constant that only shifts the logged loss, and
        wrongly classified videos receive no efficiency pressure (only cross-entropy acts on
        them). This matches the reference (§5, §10 item 4).

    With ``penalty="mean"``: ``loss = sum_k lambda_k * mean_{n,s} u_{n,s,k}`` (no correctness
    gating, no square, no gamma; the target may be ``None``). Its gradient is ``lambda_k`` per
    decision whatever the decision's value, while the blockdrop square's is ``2 lambda_k f``,
    which is zero at zero use; per-sample gates in your own models usually learn better with
    ``"mean"`` (see the "blocks in your own model" docs page).

    The cross-entropy part of Eq. 4 is not included; add ``F.cross_entropy(logits, target)``.

    Args:
        cost_weights: lambda_k per modality, e.g. ``{"rgb": 1.0, "audio": 0.05}``; ``sound`` is
            accepted for ``audio``.
        gamma: the penalty of an incorrect prediction (10.0 in the paper).
        modalities: the M order of the decisions; default: the order of ``cost_weights``.
        penalty: ``"blockdrop"`` (the reference default) or ``"mean"``.

    Raises:
        ConfigError: for a modality without a cost weight, a name given twice, or an unknown
            ``penalty``.

    Shape:
        - logits: ``(B, K)`` video-level (or sample-level) logits
        - decisions: ``(B, S, M)`` with straight-through gradients (AdaMML); in general
          ``(B, ..., M)``, including ``(B, M)``; ``(B,)`` or ``(B, ...)`` when M = 1
        - target: ``(B,)`` class indices or ``(B, K)`` multi-hot
        - output: scalar

    Example:
        >>> loss_fn = EfficiencyLoss({"rgb": 1.0, "audio": 0.05}, gamma=10.0)
        >>> logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
        >>> decisions = torch.tensor([[[1.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
        >>> round(float(loss_fn(logits, decisions, torch.tensor([0, 1]))), 4)
        5.15
    """

    def __init__(
        self,
        cost_weights: Mapping[str, float],
        gamma: float = 10.0,
        *,
        modalities: Sequence[str] | None = None,
        penalty: str = "blockdrop",
    ) -> None:
        super().__init__()
        if penalty not in PENALTIES:
            raise ConfigError(f"penalty must be one of {PENALTIES}; got {penalty!r}")
        weights: dict[str, float] = {}
        for name, value in cost_weights.items():
            key = _canonical(name)
            if key in weights:
                raise ConfigError(f"cost_weights gives modality {key!r} twice (aliases resolved)")
            weights[key] = float(value)
        order = tuple(_canonical(n) for n in (modalities if modalities is not None else weights))
        if not order:
            raise ConfigError("EfficiencyLoss needs at least one modality; cost_weights is empty")
        if len(set(order)) != len(order):
            raise ConfigError(f"modalities name a modality twice (aliases resolved): {list(order)}")
        missing = [n for n in order if n not in weights]
        if missing:
            raise ConfigError(
                f"no cost weight for modalities {missing}; cost_weights has {sorted(weights)}. "
                "Give one lambda per recognition modality (reference: rgb 1.0, audio 0.05)."
            )
        self.modalities: tuple[str, ...] = order
        self._weights = {n: weights[n] for n in order}
        self.gamma = float(gamma)
        self.penalty = penalty
        # not persistent: the weights are configuration, not learned state
        self.register_buffer("lambdas", torch.tensor([weights[n] for n in order]), persistent=False)

    @property
    def cost_weights(self) -> dict[str, float]:
        """lambda_k per modality, in ``modalities`` order."""
        return dict(self._weights)

    def _correct(self, logits: Tensor, target: Tensor) -> Tensor:
        pred = logits.detach().argmax(dim=-1)
        if target.dim() == 1:
            return pred == target
        return target.gather(1, pred.unsqueeze(1)).squeeze(1) > 0

    def _fractions(self, decisions: Tensor) -> Tensor:
        """Check ``decisions`` and return ``f``, ``(B, M)``: the mean over the middle axes."""
        m = len(self.modalities)
        if not decisions.is_floating_point():
            raise ShapeError(
                f"decisions must be a float tensor of 0./1. decisions; got dtype {decisions.dtype} "
                "(use decisions.float())"
            )
        if m == 1 and decisions.dim() >= 1 and (decisions.dim() == 1 or decisions.shape[-1] != 1):
            # (B, ...) without the M axis; a trailing 1 would give the same fractions either way
            decisions = decisions.unsqueeze(-1)
        if decisions.dim() < 2 or decisions.shape[-1] != m:
            single = " ((B,) or (B, ...) also works with one modality)" if m == 1 else ""
            raise ShapeError(
                f"decisions must be (B, ..., M={m}), e.g. (B, S, M) or (B, M), with the last "
                f"axis in the order {list(self.modalities)}{single}; got {tuple(decisions.shape)}"
            )
        # (B, S, M) keeps its shape here (a view), so AdaMML's fractions are the mean over S
        return decisions.reshape(decisions.shape[0], -1, m).mean(dim=1)

    def _check(self, logits: Tensor, batch: int, target: Tensor | None) -> None:
        if logits.dim() != 2 or logits.shape[0] != batch:
            raise ShapeError(
                f"logits must be (B={batch}, K), B from the decisions; got {tuple(logits.shape)}"
            )
        if target is None:
            if self.penalty == "blockdrop":
                raise ShapeError("the blockdrop penalty needs the target to know which are correct")
            return
        if target.shape not in ((batch,), tuple(logits.shape)):
            raise ShapeError(
                f"target must be (B,)={(batch,)} class indices or (B, K)={tuple(logits.shape)} "
                f"multi-hot; got {tuple(target.shape)}"
            )

    def components(
        self, logits: Tensor, decisions: Tensor, target: Tensor | None = None
    ) -> EfficiencyTerms:
        """The loss with its parts and the selection fractions (AdaMML Eq. 4).

        Args:
            logits: ``(B, K)`` video-level logits (only their argmax is used, detached).
            decisions: ``(B, S, M)`` decisions, M in ``self.modalities`` order; any
                ``(B, ..., M)`` (``(B, ...)`` with one modality), see the class docstring.
            target: ``(B,)`` class indices or ``(B, K)`` multi-hot; optional for ``"mean"``.

        Returns:
            An [`EfficiencyTerms`][adamml.losses.EfficiencyTerms].

        Raises:
            ShapeError: if the shapes disagree, the decisions are not floating point, or
                ``target`` is missing for ``"blockdrop"``.
        """
        frac = self._fractions(decisions)  # f_{n,k}, (B, M)
        self._check(logits, decisions.shape[0], target)
        lam = self.lambdas.to(device=decisions.device, dtype=decisions.dtype)
        if target is None:
            correct = torch.ones(decisions.shape[0], dtype=torch.bool, device=decisions.device)
        else:
            correct = self._correct(logits, target)
        if self.penalty == "mean":
            cost = (lam * frac.mean(dim=0)).sum()
            gamma_term = cost.new_zeros(())
        else:
            c = correct.to(decisions.dtype)
            cost = (lam * (c.unsqueeze(1) * frac.pow(2)).mean(dim=0)).sum()
            gamma_term = ((1.0 - c) * self.gamma).mean()
        fractions = {n: frac[:, k].detach().mean() for k, n in enumerate(self.modalities)}
        return EfficiencyTerms(cost + gamma_term, cost, gamma_term, correct, fractions)

    def forward(self, logits: Tensor, decisions: Tensor, target: Tensor | None = None) -> Tensor:
        """The scalar efficiency loss (see the class docstring; AdaMML Eq. 4).

        Args:
            logits: ``(B, K)`` video-level logits.
            decisions: ``(B, S, M)`` decisions with straight-through gradients; any
                ``(B, ..., M)`` (``(B, ...)`` with one modality), see the class docstring.
            target: ``(B,)`` class indices or ``(B, K)`` multi-hot; optional for ``"mean"``.

        Returns:
            A scalar tensor.

        Raises:
            ShapeError: if the shapes disagree, the decisions are not floating point, or
                ``target`` is missing for ``"blockdrop"``.
        """
        return self.components(logits, decisions, target).loss

    def extra_repr(self) -> str:
        lam = self.cost_weights
        return f"cost_weights={lam}, gamma={self.gamma}, penalty={self.penalty!r}"
