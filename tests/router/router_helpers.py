"""Tiny backbones and a counting SegmentSource that follow the contracts, for router tests."""

from __future__ import annotations

import torch
from einops import rearrange, reduce
from torch import Tensor, nn


class TinyBackbone(nn.Module):
    """(N, T, C, H, W) -> (N, K): conv + BatchNorm + pool per frame, mean over frames, linear."""

    def __init__(self, in_chans: int, num_classes: int = 4, width: int = 6) -> None:
        super().__init__()
        self.in_chans, self.num_classes, self.num_features = in_chans, num_classes, width
        self.conv = nn.Conv2d(in_chans, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        y = torch.relu(self.bn(self.conv(rearrange(x, "n t c h w -> (n t) c h w"))))
        return reduce(y, "(n t) d h w -> n d", "mean", n=n)

    def forward_head(self, f: Tensor) -> Tensor:
        return self.fc(f)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class CountingSource:
    """A SegmentSource that records the indices it was asked for."""

    def __init__(self, data: Tensor) -> None:
        self.data = data
        self.calls: list[tuple[list[int], list[int]]] = []

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    def gather(self, batch_idx: Tensor, seg_idx: Tensor) -> Tensor:
        self.calls.append((batch_idx.tolist(), seg_idx.tolist()))
        return self.data[batch_idx, seg_idx]


CHANNELS = {"rgb": 3, "flow": 10, "audio": 1}


def make_inputs(modalities: tuple[str, ...], b: int, s: int) -> dict[str, Tensor]:
    return {m: torch.randn(b, s, 1 if m == "audio" else 2, CHANNELS[m], 8, 8) for m in modalities}


def make_backbones(modalities: tuple[str, ...], k: int = 4) -> dict[str, nn.Module]:
    return {m: TinyBackbone(CHANNELS[m], num_classes=k) for m in modalities}
