"""Helpers of the streaming tests: tiny inputs, policies that skip, a stream over a video."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from adamml.streaming import VideoStream

__all__ = ["inputs_for", "mixed_policy", "stream_over"]


def mixed_policy(model: nn.Module, x: dict[str, Tensor] | None = None, seed: int = 0) -> None:
    """Random policy weights (not the near-all-on start) and, given inputs, per-modality head
    biases that split the (use - skip) logits on them in the middle, so that decisions mix 0
    and 1 away from ties."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.policy.modules():
            if isinstance(mod, (nn.Linear, nn.LSTMCell)):
                for p in mod.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        heads = getattr(model.policy, "heads", None)
        if getattr(model.policy, "mode", None) == "all_or_nothing":
            heads = [model.policy.head]  # one decision: (none, all) logits, as modality 0's
        if x is not None and heads is not None:
            z = model(x).policy_logits  # (B, S, M, 2)
            for k, head in enumerate(heads):
                d = (z[..., k, 1] - z[..., k, 0]).flatten().sort().values
                lo, hi = len(d) // 4, max(len(d) * 3 // 4, len(d) // 4 + 1)
                gaps = d[lo + 1 : hi + 1] - d[lo:hi]  # the widest gap in the middle half:
                i = lo + int(gaps.argmax())  # no decision sits near the new threshold
                head.bias[1] -= (d[i] + d[i + 1]) / 2


def inputs_for(model: nn.Module, b: int, s: int, seed: int = 0) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    spec = model.input_spec
    return {m: torch.randn(b, s, *spec[m].shape, generator=gen) for m in spec}


def stream_over(model: nn.Module, x: dict[str, Tensor], **kwargs) -> VideoStream:
    stream = model.stream(**kwargs)
    for t in range(next(iter(x.values())).shape[1]):
        stream.step({m: v[:, t] for m, v in x.items()})
    return stream
