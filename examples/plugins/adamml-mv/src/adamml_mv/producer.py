"""How adamml makes the ``mv`` input from a video: the `MotionVectors` producer.

adamml's data pipeline asks every modality's producer for its input
(``adamml.data.producers.InputProducer``). Motion vectors come from the container itself: the
producer decodes the file once with ``export_mvs`` for all the frames a clip stacks, brings the
fields to the frame size optical flow is computed at (shorter side 256, displacements scaled
with it), and stacks, crops, flips and normalises them with adamml's flow code, so that ``mv``
and ``flow`` share one augmentation.
"""

from __future__ import annotations

import numpy as np
from adamml.data.errors import DataError
from adamml.data.flow import FLOW_SIZE
from adamml.data.producers import ClipContext, InputProducer
from adamml.data.spatial import SpatialParams
from adamml.modalities import InputSpec
from torch import Tensor

from .segments import mv_frame_indices, stack_segments
from .vectors import read_motion_vectors, resize_field

__all__ = ["MotionVectors"]


def _flow_size(height: int, width: int, short: int = FLOW_SIZE) -> tuple[int, int]:
    """``(h, w)`` with the shorter side ``short`` (flow's frame size)."""
    scale = short / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


class MotionVectors(InputProducer):
    """Decoder motion vectors, ``C / 2`` dx/dy fields per sampled frame (stacked like flow).

    Raises (from ``make``):
        NoMotionVectorsError: the video has none (all-intra or a codec that exports none);
            a `DataError`, so ``VideoDataset(on_error=...)`` raises, skips or warns.
        DataError: the clip has no file to read them from (in-memory frames).
    """

    kind = "mv"
    x_channels = slice(0, None, 2)

    def stack(self, spec: InputSpec) -> int:
        return spec.channels // 2

    def make(
        self, spec: InputSpec, indices: np.ndarray, params: SpatialParams, ctx: ClipContext
    ) -> Tensor:
        if ctx.path is None:
            raise DataError(
                "the mv modality reads motion vectors from the video file; this clip has none "
                "(in-memory frames)"
            )
        n = self.stack(spec)
        frames = np.unique(mv_frame_indices(indices, n, ctx.num_frames))
        raw = read_motion_vectors(ctx.path, frames, size=None)
        size = _flow_size(*raw.shape[1:3])
        fields = {int(k): resize_field(f, size) for k, f in zip(frames, raw)}
        return stack_segments(
            fields, indices, ctx.num_frames, size=spec.size, params=params, consecutive=n
        )
