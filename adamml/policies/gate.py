"""The straight-through Gumbel-softmax gate that turns policy logits into 0/1 decisions."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, ShapeError

__all__ = ["GumbelGate", "gumbel_noise", "DECISION_MODES", "set_decision_mode"]

DECISION_MODES = ("sample", "argmax")
"""How a policy's gates decide: draw Gumbel noise, or take the argmax of the logits."""


def _check_tau(value: float) -> float:
    tau = float(value)
    if not math.isfinite(tau) or tau <= 0.0:
        raise ConfigError(
            f"GumbelGate temperature tau must be a finite number > 0; got {value!r} "
            "(tau = 0 is the hard limit; with hard=True any tau > 0 gives the same decisions)"
        )
    return tau


def gumbel_noise(like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard Gumbel noise ``G = -log(-log U)``, ``U ~ Uniform(0, 1)``, shaped like ``like``.

    Drawn as ``-log(E)`` with ``E ~ Exponential(1)``, which is the same distribution and never
    takes the log of 0 (AdaMML Eq. 2).

    Args:
        like: a tensor whose shape, dtype and device the noise takes.
        generator: optional generator (on ``like``'s device) for reproducible noise.

    Returns:
        Gumbel samples with ``like``'s shape.
    """
    exp = torch.empty_like(like).exponential_(generator=generator)
    return -exp.log()


class GumbelGate(nn.Module):
    """Straight-through Gumbel-softmax over the last dimension (AdaMML Eq. 2-3, reference §1).

    The forward value is the one-hot of ``argmax(logits + G)`` (Eq. 2), with ``G`` standard
    Gumbel noise; the gradient is that of the relaxation ``softmax((logits + G) / tau)`` (Eq. 3).
    Logits are raw scores (the paper's ``log z``); class 0 means *skip* and class 1 *use* for
    per-modality gates, and any number of classes works (the joint gate uses ``2**M``).

    With ``hard=True`` the temperature does not change the forward decision (dividing by
    ``tau`` does not move an argmax); it only scales the straight-through gradient, roughly by
    ``1 / tau``. The output is built as ``y_hard + (y_soft - y_soft.detach())``, which has the
    gradient of ``y_hard - y_soft.detach() + y_soft`` but is exactly 0 or 1 in value.

    In ``eval()`` the gate is deterministic by default: the one-hot of ``argmax(logits)``, no
    noise. The reference samples at evaluation too (its evaluation is stochastic); pass
    ``sample_at_eval=True`` to reproduce that.

    Args:
        tau: temperature of the relaxation, > 0; a buffer, so it is saved in ``state_dict``.
            Set it with ``gate.tau = 2.0`` or
            [`set_temperature`][adamml.policies.GumbelGate.set_temperature].
        hard: return one-hot samples with straight-through gradients; ``False`` returns the soft
            relaxation ``softmax((logits + G) / tau)`` (``softmax(logits / tau)`` in
            deterministic eval).
        sample_at_eval: draw Gumbel noise in ``eval()`` as well (the reference's behaviour).

    Shape:
        ``(..., n) -> (..., n)``: the leading axes may be anything, none (``(n,)``) or an empty
        batch included; every position is gated independently, with its own noise. For
        AdaMML's policies ``(B, M, 2)`` or ``(B, S, M, 2)``; for a per-sample gate in your own
        model ``(B, 2)``, whose ``[..., 1]`` is the ``(B,)`` use decision that
        [`EfficiencyLoss`][adamml.losses.EfficiencyLoss] accepts with one cost weight.

    Raises:
        ConfigError: if ``tau`` is not a finite number > 0.
        ShapeError: if the logits are not floating point with at least 2 classes.

    Example:
        >>> import torch
        >>> gate = GumbelGate(tau=5.0)
        >>> y = gate(torch.randn(4, 2))
        >>> y.sum(-1).tolist()
        [1.0, 1.0, 1.0, 1.0]
        >>> gate.eval()(torch.tensor([[0.3, -1.0]])).tolist()
        [[1.0, 0.0]]
    """

    tau: Tensor

    def __init__(
        self, tau: float = 5.0, *, hard: bool = True, sample_at_eval: bool = False
    ) -> None:
        super().__init__()
        self.register_buffer("tau", torch.tensor(_check_tau(tau)))
        self.hard = bool(hard)
        self.sample_at_eval = bool(sample_at_eval)

    def __setattr__(self, name: str, value: Any) -> None:
        # ``gate.tau = 2.0`` writes into the buffer instead of failing on a float.
        if name == "tau" and "tau" in self.__dict__.get("_buffers", {}):
            self.set_temperature(value)
            return
        super().__setattr__(name, value)

    @property
    def temperature(self) -> float:
        """The current temperature as a Python float."""
        return float(self.tau)

    def set_temperature(self, tau: float | Tensor) -> None:
        """Set the temperature in place (the buffer keeps its device).

        Args:
            tau: the new temperature, a finite number > 0.

        Raises:
            ConfigError: if ``tau`` is not a finite number > 0.
        """
        value = _check_tau(tau.item() if isinstance(tau, Tensor) else tau)
        with torch.no_grad():
            self._buffers["tau"].fill_(value)

    @property
    def sampling(self) -> bool:
        """Whether the next forward call draws Gumbel noise (training, or ``sample_at_eval``)."""
        return self.training or self.sample_at_eval

    def forward(
        self,
        logits: Tensor,
        *,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Sample one-hot decisions from raw logits.

        Args:
            logits: raw scores, classes in the last dimension.
            generator: optional generator (on the logits' device) for the Gumbel noise.
            noise: optional Gumbel noise to use instead of drawing it (same shape as
                ``logits``), e.g. common random numbers or a hand-checked example. Ignored when
                the gate is deterministic (eval without ``sample_at_eval``).

        Returns:
            One-hot samples ``(..., n)`` in the logits' dtype (soft samples if ``hard=False``).

        Raises:
            ShapeError: for non-float logits, fewer than 2 classes, or noise of another shape.
        """
        if not logits.is_floating_point() or logits.dim() < 1 or logits.shape[-1] < 2:
            raise ShapeError(
                "GumbelGate logits must be a float tensor (..., n) with n >= 2 classes; "
                f"got dtype {logits.dtype} and shape {tuple(logits.shape)}"
            )
        if self.sampling:
            if noise is None:
                noise = gumbel_noise(logits, generator)
            elif noise.shape != logits.shape:
                raise ShapeError(
                    f"GumbelGate noise must have the logits' shape {tuple(logits.shape)}; "
                    f"got {tuple(noise.shape)}"
                )
            perturbed = logits + noise.to(logits)
        else:
            perturbed = logits
        tau = self.tau.to(device=logits.device, dtype=logits.dtype)
        y_soft = F.softmax(perturbed / tau, dim=-1)
        if not self.hard:
            return y_soft
        index = perturbed.argmax(dim=-1)
        y_hard = F.one_hot(index, logits.shape[-1]).to(logits.dtype)
        # value exactly y_hard (x - x == 0 in floating point), gradient of y_soft
        return y_hard + (y_soft - y_soft.detach())

    def extra_repr(self) -> str:
        return f"tau={self.temperature:.4g}, hard={self.hard}, sample_at_eval={self.sample_at_eval}"


def set_decision_mode(module: nn.Module, mode: str) -> None:
    """Make every [`GumbelGate`][adamml.policies.GumbelGate] inside ``module`` sample
    (``"sample"``) or take the argmax (``"argmax"``) until the next ``train()``/``eval()``.

    A frozen policy in joint training keeps sampling (the reference) or decides by argmax
    (``frozen_policy: argmax``); the rest of the module keeps its mode. An ``"argmax"`` gate
    with ``sample_at_eval`` still samples.

    Raises:
        ConfigError: for another mode.
    """
    if mode not in DECISION_MODES:
        raise ConfigError(f"decision mode must be one of {DECISION_MODES}; got {mode!r}")
    for sub in module.modules():
        if isinstance(sub, GumbelGate):
            sub.train(mode == "sample")
