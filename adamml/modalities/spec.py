"""What a modality is: the shape of one segment, its policy view and its defaults."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from ..errors import ShapeError

__all__ = ["InputSpec", "Modality"]

_VIEW_CHUNK = 40
"""Frames resized per call by `Modality.policy_view` on a CPU (12 MB of RGB at 160x160)."""


@dataclass(frozen=True)
class InputSpec:
    """The shape of one segment of one modality, without batch and segment dimensions.

    Attributes:
        shape: ``(T, C, H, W)``; audio is ``(1, 1, F, W)``.
        modality: the modality name.
        consecutive: raw frames that make one sampled frame (5 for flow and RGB difference).

    Example:
        >>> import adamml
        >>> adamml.get_modality("rgb").input_spec.shape
        (8, 3, 224, 224)
    """

    shape: tuple[int, int, int, int]
    modality: str = ""
    consecutive: int = 1

    @property
    def frames(self) -> int:
        """T, frames per segment."""
        return self.shape[0]

    @property
    def channels(self) -> int:
        """C, channels per frame."""
        return self.shape[1]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W), or (F, W) for audio."""
        return (self.shape[2], self.shape[3])


@dataclass(frozen=True)
class Modality:
    """A modality: channels, frames per segment, input size, policy view and defaults.

    AdaMML (Sec. 3.1, appendix B) feeds each modality to its own recognition network, while the
    policy looks at a cheaper *view* of the same segment: for visual modalities the reference
    resizes the recognition crop to 160x160 (bilinear) and keeps frames 0, 2, 4 and 6 of 8;
    audio is seen as it is.

    Attributes:
        name: registry name, e.g. ``"rgb"``.
        channels: C per frame (3 RGB, 10 flow, 15 RGB difference, 1 audio).
        frames: T per segment (8 visual, 1 audio).
        size: (H, W) of the recognition input; (F, W) for audio.
        is_audio: spectrogram modality (no temporal frames, no policy resize).
        consecutive: raw frames stacked into one sampled frame (5 for flow and RGB difference).
        policy_size: (H, W) of the policy view; ``None`` keeps the recognition size.
        policy_frame_stride: the policy keeps every n-th frame (2: frames 0, 2, 4, 6).
        recognition_backbone: default recognition backbone name (see `BACKBONES`).
        policy_backbone: default policy feature extractor name.
        cost_weight: default efficiency-loss weight lambda_k (AdaMML Eq. 4).
        description: one line for listings.
        producer: how the input is made from a video: an
            [`InputProducer`][adamml.data.producers.InputProducer] (instance or class) or its
            ``"module:Class"`` path, imported when data is first made; ``None``: inputs come
            as tensors only (see "Writing a modality plugin").
        tiny: the fields this modality changes in the tiny ``test_`` models (smaller inputs,
            tiny backbones), e.g. ``{"size": (32, 32), "recognition_backbone": "tiny_tsn"}``;
            empty: the ``test_`` twins use the modality as it is.

    Example:
        >>> import torch, adamml
        >>> rgb = adamml.get_modality("rgb")
        >>> rgb.policy_view(torch.zeros(2, 5, 8, 3, 224, 224)).shape
        torch.Size([2, 5, 4, 3, 160, 160])
    """

    name: str
    channels: int
    frames: int
    size: tuple[int, int]
    is_audio: bool = False
    consecutive: int = 1
    policy_size: tuple[int, int] | None = (160, 160)
    policy_frame_stride: int = 2
    recognition_backbone: str = "resnet50_tsn"
    policy_backbone: str = "mobilenetv2_policy"
    cost_weight: float = 1.0
    description: str = ""
    producer: Any = field(default=None, hash=False)
    tiny: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def input_spec(self) -> InputSpec:
        """Shape of one recognition segment, ``(T, C, H, W)``."""
        return InputSpec((self.frames, self.channels, *self.size), self.name, self.consecutive)

    @property
    def policy_input_spec(self) -> InputSpec:
        """Shape of one segment as the policy sees it."""
        if self.is_audio:
            return self.input_spec
        frames = len(range(0, self.frames, self.policy_frame_stride))
        size = self.policy_size or self.size
        return InputSpec((frames, self.channels, *size), self.name, self.consecutive)

    def replace(self, **changes: object) -> Modality:
        """A copy with some fields changed (e.g. a smaller ``size`` for tiny models)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def check(self, x: Tensor, *, policy: bool = False) -> None:
        """Raise [`ShapeError`][adamml.errors.ShapeError] unless ``x`` is ``(B, S, T, C, H, W)``
        with this modality's ``(T, C, H, W)``."""
        spec = self.policy_input_spec if policy else self.input_spec
        if x.dim() != 6 or tuple(x.shape[2:]) != spec.shape:
            view = "policy view" if policy else "input"
            raise ShapeError(
                f"{self.name} {view} must have shape (B, S, {', '.join(map(str, spec.shape))}) "
                f"= (B, S, T, C, H, W); got {tuple(x.shape)}"
            )

    def policy_view(self, x: Tensor) -> Tensor:
        """The policy's view of a recognition input (AdaMML appendix B, reference §0).

        Shape:
            ``(B, S, T, C, H, W) -> (B, S, T', C, H', W')`` with ``T' = ceil(T / stride)`` and
            ``(H', W') = policy_size``. Audio passes through unchanged.
        """
        if self.is_audio:
            return x
        x = x[:, :, :: self.policy_frame_stride]
        size = self.policy_size
        if size is None or tuple(x.shape[-2:]) == tuple(size):
            return x
        b, s = x.shape[:2]
        flat = rearrange(x, "b s t c h w -> (b s t) c h w")
        # written straight into channels_last, the layout the policy's backbones run in, and
        # on a CPU a few frames at a time so that the resized frames are still in cache when
        # they are laid out: the full-size policy at batch 8 took 934 ms instead of 957 (A/B
        # in one process; the same at batch 1, where the backbone's chunks were in cache)
        out = torch.empty(
            (flat.shape[0], flat.shape[1], *size),
            dtype=flat.dtype,
            device=flat.device,
            memory_format=torch.channels_last,
        )
        step = _VIEW_CHUNK if flat.device.type == "cpu" else max(1, flat.shape[0])
        for i in range(0, flat.shape[0], step):
            part = F.interpolate(
                flat[i : i + step], size=size, mode="bilinear", align_corners=False
            )
            out[i : i + step].copy_(part)
        return rearrange(out, "(b s t) c h w -> b s t c h w", b=b, s=s)

    def example_input(self, batch: int = 1, segments: int = 1, *, policy: bool = False) -> Tensor:
        """A random tensor of this modality's shape, for tests and FLOP counting."""
        spec = self.policy_input_spec if policy else self.input_spec
        return torch.randn(batch, segments, *spec.shape)
