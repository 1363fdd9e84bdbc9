"""A small convolutional backbone for stacked motion-vector fields (registry ``BACKBONES``).

Motion vectors are piecewise constant over 8x8 or 16x16 blocks, so a network of a few strided
convolutions sees them as well as a ResNet would see pixels, for a few percent of the cost.

```
x (N, T, 10, H, W) ──► (N·T, 10, H, W) ──► [conv 3x3 /2, BN, ReLU] x 4 ──► mean over H, W
   (temporal max-pool before the 3rd and 4th stage: T 8 -> 4 -> 2)
   ──► (N·T', D) ──► mean over T' ──► (N, D) ──► dropout ──► fc ──► (N, K)
```

It follows adamml's [`FrameBackbone`][adamml.backbones.base.FrameBackbone] contract
(``forward``, ``forward_features``, ``forward_head``, ``num_features``, ``num_classes``,
``in_chans``), so the eval fast path (BatchNorm folded), feature extraction and FLOP counting
work as for the built-ins.
"""

from __future__ import annotations

from collections.abc import Sequence

from adamml.backbones.base import FrameBackbone, temporal_max_pool
from adamml.modalities import Modality
from torch import Tensor, nn

__all__ = ["MotionVectorNet", "mv_convnet", "mv_convnet_policy"]


class MotionVectorNet(FrameBackbone):
    """Strided 3x3 convolutions, BatchNorm and ReLU per frame, averaged over frames (TSN).

    Args:
        in_chans: C (10: five interleaved dx/dy fields).
        widths: output channels of the stages; D is the last.
        pool_before: stages preceded by a temporal max-pool (kernel 3, stride 2).
        temporal_pool: False turns the pools off.
        num_classes: K; 0 gives features.
        frames: T of one segment.
        drop_rate: dropout before ``fc``.

    Shape:
        ``(N, T, C, H, W) -> (N, K)``; ``(N, D)`` features with ``num_classes=0``.

    Example:
        >>> net = MotionVectorNet(in_chans=10, widths=(8, 16), num_classes=3)
        >>> net(torch.randn(2, 4, 10, 32, 32)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        *,
        in_chans: int = 10,
        widths: Sequence[int] = (32, 64, 128, 256),
        pool_before: Sequence[int] = (2, 3),
        temporal_pool: bool = True,
        num_classes: int = 0,
        frames: int = 8,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__(
            num_features=widths[-1],
            num_classes=num_classes,
            in_chans=in_chans,
            frames=frames,
            drop_rate=drop_rate,
        )
        stages = []
        c = in_chans
        for w in widths:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(c, w, kernel_size=3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                )
            )
            c = w
        self.stages = nn.ModuleList(stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.pool_before = frozenset(pool_before) if temporal_pool else frozenset()
        self._init_head()

    def _frame_features(self, x: Tensor, frames: int) -> tuple[Tensor, int]:
        t = frames
        for i, stage in enumerate(self.stages):
            if i in self.pool_before:
                x, t = temporal_max_pool(x, t)
            x = stage(x)
        return x.mean(dim=(-2, -1)), t


def mv_convnet(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.5
) -> MotionVectorNet:
    """Recognition network for motion vectors: stages 32, 64, 128, 256 wide (D = 256)."""
    return MotionVectorNet(
        in_chans=modality.channels,
        widths=(32, 64, 128, 256),
        temporal_pool=temporal_pool,
        num_classes=num_classes,
        frames=modality.frames,
        drop_rate=drop_rate,
    )


def mv_convnet_policy(
    *, modality: Modality, num_classes: int = 0, temporal_pool: bool = True, drop_rate: float = 0.0
) -> MotionVectorNet:
    """Policy feature extractor for motion vectors: stages 16, 32, 64, 128 wide (D = 128)."""
    return MotionVectorNet(
        in_chans=modality.channels,
        widths=(16, 32, 64, 128),
        temporal_pool=temporal_pool,
        num_classes=num_classes,
        frames=modality.frames,
        drop_rate=drop_rate,
    )
