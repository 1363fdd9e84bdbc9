"""Route each (video, segment) pair to the recognition backbones its decisions select.

AdaMML (Sec. 3.2, Fig. 2) runs a modality's sub-network only on the segments where the policy
chose that modality. The reference implementation never skips anything: it runs every backbone
on every segment and multiplies the segment logits by the 0/1 decision (reference §0 step 4, §4).
The router keeps that *masked* path for training, where the multiplication carries the
straight-through gradient back to the policy, and in evaluation it really skips: it gathers the
selected pairs into one batch per modality, runs the backbone once and scatters the result into
zeros.

```
inputs[k] (B, S, T, C, H, W) ──┐        training / eval_mode="masked"
decisions (B, S, M) ───────────┼──> backbone_k on all B*S segments ──> * u_k ──> (B, S, K|D)
                               │        eval (sparse)
                               └──> gather u_k > 0.5 ──> backbone_k on n segments ──> scatter
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from einops import rearrange
from torch import Tensor, nn

from ._checks import canonical_inputs
from .errors import ConfigError, ShapeError
from .modalities import canonical_name as _canonical

__all__ = ["ModalityRouter", "SegmentSource"]

EVAL_MODES = ("sparse", "masked")


@runtime_checkable
class SegmentSource(Protocol):
    """A lazily materialised modality input: only the segments asked for are produced.

    Use it for inputs that are expensive to compute, such as optical flow computed on demand
    (AdaMML Table 2 "AdaMML-RGBDiff": flow is computed only where the policy selects it).

    Attributes:
        shape: the full input shape ``(B, S, T, C, H, W)`` as if it were a tensor.

    Example:
        >>> class Zeros:
        ...     shape = (2, 3, 1, 1, 8, 8)
        ...     def gather(self, batch_idx, seg_idx):
        ...         return torch.zeros(len(batch_idx), 1, 1, 8, 8)
        >>> isinstance(Zeros(), SegmentSource)
        True
    """

    @property
    def shape(self) -> tuple[int, ...]:
        """``(B, S, T, C, H, W)``."""
        ...

    def gather(self, batch_idx: Tensor, seg_idx: Tensor) -> Tensor:
        """The segments ``(batch_idx[i], seg_idx[i])``, shape ``(n, T, C, H, W)``."""
        ...


RouterInput = Tensor | SegmentSource


class ModalityRouter(nn.Module):
    """Run each modality's backbone on the segments selected for it (AdaMML Sec. 3.2).

    Args:
        backbones: one backbone per recognition modality; the dict order is the M order of the
            decisions. ``sound`` is accepted as an alias of ``audio``. Each backbone maps
            ``(N, T, C, H, W)`` to ``(N, K)`` and, for ``features=True``, has
            ``forward_features`` returning ``(N, D)``.
        eval_mode: ``"sparse"`` (default) gathers and runs only the selected segments in
            evaluation; ``"masked"`` runs every segment and masks, as the reference does.

    Raises:
        ConfigError: for an empty ``backbones``, an unknown ``eval_mode``, or (sparse mode) a
            backbone without an integer ``num_classes`` or ``num_features`` attribute, which is
            needed to build the zero output of a modality that nothing selected.

    Shape:
        - inputs[k]: ``(B, S, T, C, H, W)`` tensor or [`SegmentSource`][adamml.router.SegmentSource]
        - decisions: ``(B, S, M)``, 0/1 (training: with straight-through gradients)
        - output[k]: ``(B, S, K)`` logits, or ``(B, S, D)`` with ``features=True``; zeros where
          the segment was skipped.

    Attributes:
        modalities: the modality names in decision order.
        last_counts: per modality, how many segments its backbone ran on in the last call.

    Example:
        >>> router = ModalityRouter({"rgb": rgb_net, "audio": audio_net})  # doctest: +SKIP
        >>> out = router({"rgb": x_rgb, "audio": x_audio}, decisions)  # doctest: +SKIP
        >>> out["rgb"].shape  # doctest: +SKIP
        torch.Size([2, 5, 31])
    """

    def __init__(self, backbones: Mapping[str, nn.Module], *, eval_mode: str = "sparse") -> None:
        super().__init__()
        if not backbones:
            raise ConfigError("ModalityRouter needs at least one backbone; got an empty dict")
        if eval_mode not in EVAL_MODES:
            raise ConfigError(f"eval_mode must be one of {EVAL_MODES}; got {eval_mode!r}")
        names = [_canonical(n) for n in backbones]
        if len(set(names)) != len(names):
            raise ConfigError(f"backbones name a modality twice (aliases resolved): {names}")
        self.backbones = nn.ModuleDict(dict(zip(names, backbones.values())))
        self.modalities: tuple[str, ...] = tuple(names)
        self.eval_mode = eval_mode
        self.last_counts: dict[str, int] = {}
        if eval_mode == "sparse":
            for name in names:
                self._output_dim(name, features=False)

    def backbone(self, name: str) -> nn.Module:
        """The recognition backbone of modality ``name`` (aliases such as ``sound`` accepted).

        Raises:
            ConfigError: if the router has no backbone for ``name``.
        """
        key = _canonical(name)
        if key not in self.backbones:
            raise ConfigError(
                f"the router has no backbone for {name!r}; it runs {list(self.modalities)}"
            )
        return self.backbones[key]

    def _output_dim(self, name: str, *, features: bool) -> int:
        """K (or D with ``features``) of one backbone, from its attributes."""
        net = self.backbones[name]
        num_classes = getattr(net, "num_classes", None)
        num_features = getattr(net, "num_features", None)
        dim = num_features if features or not num_classes else num_classes
        if not isinstance(dim, int) or dim <= 0:
            wanted = "num_features" if features else "num_classes (or num_features)"
            raise ConfigError(
                f"backbone of modality {name!r} ({type(net).__name__}) has no positive integer "
                f"{wanted} attribute; the sparse router needs it to build the zero output when no "
                f"segment selects {name!r}. Set the attribute or use eval_mode='masked'."
            )
        return dim

    def _run(self, name: str, x: Tensor, *, features: bool) -> Tensor:
        net = self.backbones[name]
        if not features:
            return net(x)
        forward_features = getattr(net, "forward_features", None)
        if forward_features is None:
            raise ConfigError(
                f"backbone of modality {name!r} ({type(net).__name__}) has no forward_features; "
                "call the router with features=False or give it a timm-style backbone"
            )
        return forward_features(x)

    def _inputs_by_modality(
        self, inputs: Mapping[str, RouterInput], batch: int, segments: int
    ) -> dict[str, RouterInput]:
        canon, b, s = canonical_inputs(inputs, self.modalities)
        if (b, s) != (batch, segments):
            name = self.modalities[0]
            raise ShapeError(
                f"inputs[{name!r}] has shape {tuple(canon[name].shape)}; expected "
                f"(B, S, T, C, H, W) with B={batch}, S={segments} from decisions"
            )
        return {name: canon[name] for name in self.modalities}

    def forward(
        self,
        inputs: Mapping[str, RouterInput],
        decisions: Tensor,
        *,
        features: bool = False,
    ) -> dict[str, Tensor]:
        """Run the selected segments of every modality (AdaMML Sec. 3.2, reference §4).

        Args:
            inputs: per modality, a ``(B, S, T, C, H, W)`` tensor or a ``SegmentSource``;
                extra keys (e.g. policy-only modalities) are ignored.
            decisions: ``(B, S, M)`` 0/1 decisions, M in ``self.modalities`` order.
            features: return backbone features (``forward_features``) instead of logits.

        Returns:
            Per modality, ``(B, S, K)`` logits (or ``(B, S, D)`` features) multiplied by the
            decision, so zeros where the modality was skipped.

        Raises:
            ShapeError: if ``decisions`` is not ``(B, S, M)``, a modality's input is missing or its
                B, S disagree with the decisions.

        Shape:
            decisions ``(B, S, M)`` -> output[k] ``(B, S, K | D)``.
        """
        if not isinstance(decisions, Tensor) or decisions.dim() != 3:
            raise ShapeError(
                f"decisions must be a (B, S, M) tensor; got "
                f"{tuple(decisions.shape) if isinstance(decisions, Tensor) else type(decisions)}"
            )
        batch, segments, m = decisions.shape
        if m != len(self.modalities):
            raise ShapeError(
                f"decisions has M={m} modalities but the router has {len(self.modalities)}: "
                f"{list(self.modalities)}"
            )
        xs = self._inputs_by_modality(inputs, batch, segments)
        sparse = not self.training and self.eval_mode == "sparse"
        outputs: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        for k, name in enumerate(self.modalities):
            u = decisions[..., k]
            if sparse:
                outputs[name], counts[name] = self._sparse(name, xs[name], u, features=features)
            else:
                outputs[name], counts[name] = self._masked(name, xs[name], u, features=features)
        self.last_counts = counts
        return outputs

    def _masked(
        self, name: str, x: RouterInput, u: Tensor, *, features: bool
    ) -> tuple[Tensor, int]:
        """Every segment runs; the output is multiplied by the decision (reference §4)."""
        batch, segments = u.shape
        if isinstance(x, Tensor):
            flat = rearrange(x, "b s ... -> (b s) ...")
        else:
            b_idx = torch.arange(batch, device=u.device).repeat_interleave(segments)
            s_idx = torch.arange(segments, device=u.device).repeat(batch)
            flat = x.gather(b_idx, s_idx)
        out = rearrange(self._run(name, flat, features=features), "(b s) d -> b s d", b=batch)
        return out * u.unsqueeze(-1), batch * segments

    def _sparse(
        self, name: str, x: RouterInput, u: Tensor, *, features: bool
    ) -> tuple[Tensor, int]:
        """Only the selected segments run, in one batch; the rest are zeros."""
        batch, segments = u.shape
        b_idx, s_idx = (u > 0.5).nonzero(as_tuple=True)
        n = int(b_idx.numel())
        if n == 0:
            dim = self._output_dim(name, features=features)
            params = [p for p in self.backbones[name].parameters() if p.is_floating_point()]
            dtype = torch.promote_types(params[0].dtype, u.dtype) if params else u.dtype
            return u.new_zeros((batch, segments, dim), dtype=dtype), 0
        picked = x[b_idx, s_idx] if isinstance(x, Tensor) else x.gather(b_idx, s_idx)
        out = self._run(name, picked, features=features)
        # multiplying by the decision value (1.0) keeps eval equal to the masked path exactly
        out = out * u[b_idx, s_idx].unsqueeze(-1)
        zeros = out.new_zeros((batch, segments, out.shape[-1]))
        return zeros.index_put((b_idx, s_idx), out), n

    def extra_repr(self) -> str:
        return f"modalities={self.modalities}, eval_mode={self.eval_mode!r}"
