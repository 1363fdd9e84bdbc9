"""Tiny policy extractors and view factories for the policy tests (imported by name: pytest puts
this folder on sys.path)."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

CHANNELS = {"rgb": 3, "flow": 10, "rgbdiff": 15, "audio": 1}
MODALITY_SETS = [("rgb", "audio"), ("rgb", "flow"), ("rgb", "audio", "flow")]


class TinyExtractor(nn.Module):
    """(N, T, C, H, W) -> (N, D): a 3x3 conv per frame, ReLU, mean over frames and space."""

    def __init__(self, in_chans: int, num_features: int = 6) -> None:
        super().__init__()
        self.num_features = num_features
        self.conv = nn.Conv2d(in_chans, num_features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        y = torch.relu(self.conv(rearrange(x, "n t c h w -> (n t) c h w")))
        return rearrange(y, "(n t) d h w -> n t d h w", n=n).mean(dim=(1, 3, 4))


def tiny_backbones(modalities: tuple[str, ...]) -> dict[str, nn.Module]:
    return {m: TinyExtractor(CHANNELS[m], num_features=4 + i) for i, m in enumerate(modalities)}


def make_views(modalities: tuple[str, ...], b: int, s: int) -> dict[str, Tensor]:
    views = {}
    for m in modalities:
        if m == "audio":
            views[m] = torch.randn(b, s, 1, 1, 8, 8)
        else:
            views[m] = torch.randn(b, s, 2, CHANNELS[m], 6, 6)
    return views
