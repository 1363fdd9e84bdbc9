"""The exponential temperature schedule of the Gumbel gate."""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from ..errors import ConfigError
from .gate import GumbelGate

__all__ = ["TemperatureSchedule"]


class TemperatureSchedule:
    """Exponential decay of the Gumbel temperature, once per joint epoch (AdaMML Sec. 3.2,
    reference §1).

    ``value = max(start * decay ** steps, min_tau)``. The reference starts at 5.0 and multiplies
    by 0.965 after each alternation (joint) epoch, with no floor, so after 20 epochs tau is
    ``5 * 0.965 ** 20 = 2.452``; it is not decayed during warm-up or fine-tuning.

    With a hard gate (the default) tau does not change any decision: it only scales the
    straight-through gradient (roughly by ``1 / tau``). Annealing therefore makes the policy's
    gradient larger over time, not its samples "more discrete".

    Args:
        start: the initial temperature (5.0 in the paper).
        decay: the factor applied per [`step`][adamml.policies.TemperatureSchedule.step]
            (0.965 in the reference), in (0, 1].
        min_tau: optional floor; ``None`` (the reference) has none.

    Raises:
        ConfigError: for a non-positive start or floor, or a decay outside (0, 1].

    Example:
        >>> sched = TemperatureSchedule()
        >>> for _ in range(20):
        ...     _ = sched.step()
        >>> round(sched.value, 3)
        2.452
        >>> gate = GumbelGate()
        >>> sched.apply(gate)
        1
        >>> round(gate.temperature, 3)
        2.452
    """

    def __init__(
        self, start: float = 5.0, decay: float = 0.965, *, min_tau: float | None = None
    ) -> None:
        if not (math.isfinite(start) and start > 0):
            raise ConfigError(f"TemperatureSchedule start must be > 0; got {start!r}")
        if not (0 < decay <= 1):
            raise ConfigError(f"TemperatureSchedule decay must be in (0, 1]; got {decay!r}")
        if min_tau is not None and not (math.isfinite(min_tau) and min_tau > 0):
            raise ConfigError(f"TemperatureSchedule min_tau must be > 0 or None; got {min_tau!r}")
        self.start = float(start)
        self.decay = float(decay)
        self.min_tau = None if min_tau is None else float(min_tau)
        self.steps = 0

    @property
    def value(self) -> float:
        """The temperature after ``steps`` decays (closed form, so no rounding drift)."""
        tau = self.start * self.decay**self.steps
        return tau if self.min_tau is None else max(tau, self.min_tau)

    def step(self) -> float:
        """Decay once (call after each joint epoch) and return the new temperature."""
        self.steps += 1
        return self.value

    def apply(self, module: nn.Module) -> int:
        """Set the temperature of ``module`` if it is a gate, else of every gate inside it.

        Args:
            module: a [`GumbelGate`][adamml.policies.GumbelGate] or any module containing some
                (a policy, a whole model).

        Returns:
            How many gates were set (0 for a model without a learned policy).
        """
        gates = [m for m in module.modules() if isinstance(m, GumbelGate)]
        for gate in gates:
            gate.set_temperature(self.value)
        return len(gates)

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state, for checkpoints (``value`` is informative)."""
        return {
            "start": self.start,
            "decay": self.decay,
            "min_tau": self.min_tau,
            "steps": self.steps,
            "value": self.value,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by [`state_dict`][adamml.policies.TemperatureSchedule.state_dict].

        Raises:
            ConfigError: if ``steps`` is missing or the values are invalid.
        """
        if "steps" not in state:
            raise ConfigError(f"TemperatureSchedule state needs 'steps'; got keys {sorted(state)}")
        restored = TemperatureSchedule(
            state.get("start", self.start),
            state.get("decay", self.decay),
            min_tau=state.get("min_tau", self.min_tau),
        )
        self.start, self.decay, self.min_tau = restored.start, restored.decay, restored.min_tau
        self.steps = int(state["steps"])

    def __repr__(self) -> str:
        return (
            f"TemperatureSchedule(start={self.start}, decay={self.decay}, "
            f"min_tau={self.min_tau}, steps={self.steps}, value={self.value:.4g})"
        )
