"""Shared types and the tensor-dimension legend used in every docstring.

Shape legend:

| letter | meaning |
| --- | --- |
| B | batch (videos) |
| S | segments per video (5 in training, 10 in evaluation in the paper) |
| T | frames per segment (8 for RGB/flow/RGB difference; 1 for audio) |
| M | modalities (in the order of ``model.modalities``) |
| C | channels (3 RGB, 10 flow, 15 RGB difference, 1 audio) |
| H, W | height and width (for audio: F frequency bins and W time frames) |
| F | frequency bins of a spectrogram |
| K | classes |
| D | feature width |
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

__all__ = ["ModelOutput", "PolicyOutput"]


class PolicyOutput(NamedTuple):
    """What a policy network returns (AdaMML Sec. 3.2).

    Attributes:
        decisions: ``(B, S, M)`` 0/1 decisions, 1 = use the modality on that segment. In training
            they carry straight-through gradients from the Gumbel-softmax gate.
        logits: ``(B, S, M, 2)`` raw (skip, use) logits, or ``None`` for policies without logits
            (random, all-on).
    """

    decisions: Tensor
    logits: Tensor | None = None


class ModelOutput(NamedTuple):
    """What [`AdaMML`][adamml.AdaMML] returns.

    Attributes:
        logits: ``(B, K)`` video-level prediction (mean over segments of the fused segment logits).
        decisions: ``(B, S, M)`` 0/1 decisions actually used, M in ``model.modalities`` order.
        policy_logits: ``(B, S, M, 2)`` or ``None``.
        gflops: ``(B,)`` per-video cost of what was selected, paper convention, policy included.
    """

    logits: Tensor
    decisions: Tensor
    policy_logits: Tensor | None
    gflops: Tensor
