"""The AdaMML policy network: joint features, an LSTM over segments, per-modality gates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from ..errors import ConfigError, ShapeError
from ..precision import full_precision
from ..registries import POLICIES
from ..types import PolicyOutput
from .base import JointFeaturePolicy, init_use_bias
from .gate import GumbelGate

__all__ = ["PolicyLSTM", "PolicyState"]


class PolicyState(NamedTuple):
    """The recurrent state carried from one segment to the next.

    Attributes:
        h: ``(B, hidden_size)`` LSTM hidden state.
        c: ``(B, hidden_size)`` LSTM cell state.
        prev_logits: ``(B, R)`` the previous step's raw logits, flattened (zeros at t = 0).
    """

    h: Tensor
    c: Tensor
    prev_logits: Tensor


@POLICIES.register("lstm", aliases=("policy_lstm",))
class PolicyLSTM(JointFeaturePolicy):
    """The AdaMML policy: joint features, an LSTM over segments, one gate per modality
    (AdaMML Sec. 3.2, Eq. 1-3; reference §2 "LSTM variant").

    ```
    views[m] (B,S,T',C,H',W') --extractor_m--> (B,S,D_m) --concat--> joint FCs --> f_t (B,S,J)
    for t in 0..S-1:
        h_t, c_t = LSTMCell([f_t, z_{t-1}], (h_{t-1}, c_{t-1}))     z_{-1} = 0
        z_t[m]   = heads[m](h_t)                   (B, 2) raw (skip, use) logits
        u_t[m]   = gate(z_t[m] - (0, t_m))[..., 1] 0/1, straight-through gradient
    ```

    ``t_m`` are the decision thresholds (``thresholds``, zeros unless calibrated; in eval a
    segment uses m iff its margin ``z_t[m][1] - z_t[m][0] > t_m``). The fed-back logits are
    the raw ``z_t``, before the thresholds, so changing them never changes a later margin.

    Like the reference, the LSTM input at ``t > 0`` holds the previous step's raw logits,
    flattened ``(m1: l0, l1, m2: l0, l1, ...)`` and not detached; the paper's Eq. 1 only has
    ``f_t``, which ``feed_logits=False`` gives (``LSTMCell(joint_dim, hidden_size)``). The
    extractors run once on all ``B * S`` segments; only the LSTM cell loops over S, so the same
    policy unrolls over 5 segments in training and 10 in evaluation.

    Args:
        modalities: modality names, in the order of the decisions' M axis.
        backbones: per-modality extractors ``(N, T', C, H', W') -> (N, D_m)`` with
            ``num_features`` (or backbone names); ``None`` builds each modality's default
            ``policy_backbone`` (MobileNetV2 with temporal pooling).
        joint_dim: width J of the joint feature (2048).
        hidden_size: LSTM width (256).
        gate: the Gumbel gate; ``None`` makes ``GumbelGate(tau=5.0)``.
        feed_logits: feed the previous logits back into the LSTM (the reference).
        init_use: start the heads so that each modality is used with probability ``init_use``
            (0.9: joint training starts near weighted fusion and learns what to skip;
            `init_use_bias`); ``None`` keeps PyTorch's initialisation (about 0.5, the
            reference's), which on new data often collapsed to skipping everything
            (docs/training.md).

    Shape:
        ``views[m]: (B, S, T', C, H', W')`` (audio ``(B, S, 1, 1, F, W)``) ->
        ``PolicyOutput(decisions (B, S, M), logits (B, S, M, 2))``.

    Raises:
        ConfigError: for bad sizes or missing extractors.
        ShapeError: for missing views or views that disagree on ``(B, S)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> class Tiny(nn.Module):
        ...     num_features = 4
        ...     def __init__(self, c):
        ...         super().__init__()
        ...         self.fc = nn.Linear(c, 4)
        ...     def forward(self, x):                      # (N, T, C, H, W) -> (N, 4)
        ...         return self.fc(x.mean(dim=(1, 3, 4)))
        >>> policy = PolicyLSTM(("rgb", "audio"), backbones={"rgb": Tiny(3), "audio": Tiny(1)},
        ...                     joint_dim=8, hidden_size=8)
        >>> out = policy({"rgb": torch.randn(2, 5, 4, 3, 16, 16),
        ...               "audio": torch.randn(2, 5, 1, 1, 16, 16)})
        >>> out.decisions.shape, out.logits.shape
        (torch.Size([2, 5, 2]), torch.Size([2, 5, 2, 2]))
    """

    tiny_args: Mapping[str, Any] = {"joint_dim": 64, "hidden_size": 32}
    stream_mode = "recurrent"  # step() carries (h, c, previous logits) from segment to segment

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
    ) -> None:
        super().__init__(modalities, backbones=backbones, joint_dim=joint_dim)
        if int(hidden_size) < 1:
            raise ConfigError(f"hidden_size must be >= 1; got {hidden_size!r}")
        if gate is not None and not isinstance(gate, GumbelGate):
            raise ConfigError(f"gate must be a GumbelGate; got {type(gate).__name__}")
        self.hidden_size = int(hidden_size)
        self.feed_logits = bool(feed_logits)
        extra = self._feedback_size() if self.feed_logits else 0
        self.lstm = nn.LSTMCell(self.joint_dim + extra, self.hidden_size)
        self._build_heads()
        self._init_use(init_use)
        self.gate = gate if gate is not None else GumbelGate()

    # -- the parts the joint-gate variant replaces ---------------------------------------------
    def _feedback_size(self) -> int:
        """Width R of the flattened raw logits of one step."""
        return 2 * len(self.modalities)

    def _build_heads(self) -> None:
        self.heads = nn.ModuleList(nn.Linear(self.hidden_size, 2) for _ in self.modalities)

    def _init_use(self, init_use: float | None) -> None:
        init_use_bias(self.heads, init_use)

    def _raw_logits(self, h: Tensor) -> Tensor:
        """``(B, hidden) -> (B, R)`` raw logits, flattened in feedback order."""
        return torch.cat([head(h) for head in self.heads], dim=-1)

    def _gate_step(self, raw: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Raw logits ``(B, R)`` -> decisions ``(B, M)`` and (skip, use) logits ``(B, M, 2)``."""
        logits = rearrange(raw, "b (m k) -> b m k", k=2)
        return self.gate(self._thresholded(logits), generator=generator)[..., 1], logits

    def recurrent_feedback(self) -> dict[nn.LSTMCell, int]:
        """``{lstm: R}``: the cell's last R inputs are the previous step's raw logits (2M here,
        ``2**M`` for the joint gate; none without ``feed_logits``), which the paper's cost
        convention leaves out (reference §7)."""
        return {self.lstm: self._feedback_size() if self.feed_logits else 0}

    # -- streaming -----------------------------------------------------------------------------
    def init_state(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> PolicyState:
        """The state before the first segment: zero h, c and previous logits.

        Args:
            batch: B.
            device: defaults to the policy's parameters' device.
            dtype: defaults to the LSTM weights' dtype.
        """
        weight = self.lstm.weight_ih
        device = weight.device if device is None else torch.device(device)
        dtype = weight.dtype if dtype is None else dtype
        zeros = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        prev = torch.zeros(batch, self._feedback_size(), device=device, dtype=dtype)
        return PolicyState(zeros, zeros.clone(), prev)

    def step(
        self,
        inputs: Tensor | Mapping[str, Tensor],
        state: PolicyState | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, PolicyState]:
        """Decide for one segment, carrying the state (for streaming, reference §2).

        Args:
            inputs: the joint feature ``(B, joint_dim)`` of the segment, or its views by
                modality, each ``(B, T', C, H', W')`` (or ``(B, 1, T', C, H', W')``).
            state: the previous state; ``None`` starts a new video.
            generator: optional generator for the gate's noise.

        Returns:
            ``(decisions (B, M), logits (B, M, 2), new state)``; unrolling ``step`` over the
            segments gives what ``forward`` gives.

        Raises:
            ShapeError: for a feature of the wrong width or views with more than one segment.
        """
        if isinstance(inputs, Tensor):
            feature = inputs
            if feature.dim() != 2 or feature.shape[1] != self.joint_dim:
                raise ShapeError(
                    f"step() needs a joint feature (B, {self.joint_dim}); "
                    f"got {tuple(feature.shape)}"
                )
        else:
            views = {}
            for key, x in inputs.items():
                if isinstance(x, Tensor) and x.dim() == 6 and x.shape[1] != 1:
                    raise ShapeError(
                        f"step() takes one segment; view {key!r} has shape {tuple(x.shape)} "
                        "(use forward() for (B, S, ...) views)"
                    )
                views[key] = x.unsqueeze(1) if isinstance(x, Tensor) and x.dim() == 5 else x
            feature = self.features(views)[:, 0]
        if state is None:
            state = self.init_state(feature.shape[0], feature.device, feature.dtype)
        with full_precision(feature.device.type):
            decisions, logits, state = self._advance(feature.float(), state, generator)
        return decisions, logits, state

    def _advance(
        self, feature: Tensor, state: PolicyState, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, PolicyState]:
        x = torch.cat([feature, state.prev_logits], dim=-1) if self.feed_logits else feature
        h, c = self.lstm(x, (state.h, state.c))
        raw = self._raw_logits(h)
        decisions, logits = self._gate_step(raw, generator)
        return decisions, logits, PolicyState(h, c, raw)

    def decide(self, feats: Tensor, generator: torch.Generator | None = None) -> PolicyOutput:
        """Unroll the LSTM over the segments of ``feats (B, S, J)``, from a new state."""
        state = self.init_state(feats.shape[0], feats.device, feats.dtype)
        decisions, logits = [], []
        for t in range(feats.shape[1]):
            d, z, state = self._advance(feats[:, t], state, generator)
            decisions.append(d)
            logits.append(z)
        return PolicyOutput(torch.stack(decisions, dim=1), torch.stack(logits, dim=1))

    def extra_repr(self) -> str:
        return (
            f"modalities={self.modalities}, joint_dim={self.joint_dim}, "
            f"hidden_size={self.hidden_size}, feed_logits={self.feed_logits}"
        )
