"""Stack motion-vector fields into segments, exactly as adamml stacks optical flow.

A field read for frame ``k`` is the motion *into* ``k`` (from ``k - 1``), i.e. flow pair
``(k - 1, k)``. A sampled frame ``i`` of a flow input stacks pairs ``i, ..., i + 4``
(``adamml.data.flowclip.flow_pairs``), so the motion-vector input stacks the fields of frames
``i + 1, ..., i + 5``; cropping, flipping (x negated) and the clip-and-scale normalisation are
adamml's flow code (``flow_segments``), so both modalities share one augmentation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from adamml.data.flowclip import flow_pairs, flow_segments
from adamml.data.spatial import EVAL_SPATIAL, SpatialParams
from torch import Tensor

__all__ = ["mv_frame_indices", "stack_segments"]


def mv_frame_indices(indices: np.ndarray, consecutive: int, num_frames: int) -> np.ndarray:
    """Frames whose motion-vector fields each sampled frame stacks.

    Args:
        indices: ``(S, T)`` sampled frame indices.
        consecutive: fields per sampled frame (5).
        num_frames: frames in the video.

    Returns:
        ``(S, T, consecutive)`` int64 frame indices (``flow_pairs + 1``, within the video).

    Example:
        >>> mv_frame_indices(np.array([[0, 4]]), 3, 6).tolist()
        [[[1, 2, 3], [5, 5, 5]]]
    """
    return np.minimum(flow_pairs(indices, consecutive, num_frames) + 1, max(num_frames - 1, 0))


def stack_segments(
    fields: Mapping[int, np.ndarray],
    indices: np.ndarray,
    num_frames: int,
    *,
    size: tuple[int, int] = (224, 224),
    params: SpatialParams = EVAL_SPATIAL,
    consecutive: int = 5,
) -> Tensor:
    """Segments of stacked, augmented and normalised motion-vector fields.

    Args:
        fields: frame index -> ``(H, W, 2)`` field in pixels, for every frame of
            `mv_frame_indices` (e.g. ``read_motion_vectors`` at adamml's flow size, shorter
            side 256, zipped with its indices).
        indices: ``(S, T)`` sampled frame indices.
        num_frames: frames in the video.
        size: crop ``(h, w)``.
        params: the clip's spatial augmentation (shared with its other modalities).
        consecutive: fields per sampled frame.

    Returns:
        ``(S, T, 2 * consecutive, h, w)`` float32, channels ``dx1, dy1, ..., dx5, dy5``.

    Raises:
        KeyError: a frame of `mv_frame_indices` missing from ``fields``.
    """
    frames = mv_frame_indices(np.asarray(indices), consecutive, num_frames)
    return flow_segments(lambda k: fields[k], frames, size, params)
