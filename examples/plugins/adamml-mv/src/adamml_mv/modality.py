"""The ``mv`` modality: decoder motion vectors stacked like optical flow."""

from __future__ import annotations

from adamml.modalities import Modality

__all__ = ["MV"]

MV = Modality(
    "mv",
    channels=10,
    frames=8,
    size=(224, 224),
    consecutive=5,
    recognition_backbone="mv_convnet",
    policy_backbone="mv_convnet_policy",
    # mv_convnet costs 1.10 GMACs per 8x224x224 segment, 7.8 % of the RGB TSN ResNet-50
    # (14.1); the reference gives audio (~3 %) 0.05, so a few percent of cost -> ~0.1
    cost_weight=0.1,
    # the test_ twins: adamml's tiny input sizes, mv's own backbones (they scale with the input)
    tiny={"frames": 4, "size": (32, 32), "policy_size": (24, 24)},
    producer="adamml_mv.producer:MotionVectors",
    description=(
        "H.264 decoder motion vectors, 5 interleaved dx/dy fields per frame (per-frame pixels, "
        "like flow); free to decode, blocky (8-16 px)"
    ),
)
"""Motion vectors, sampled like flow: each of the 8 frames of a segment stacks the fields of
the 5 frames after it (``flow_pairs`` + 1), channels ``dx1, dy1, ..., dx5, dy5``."""
