"""Segment sampling: which frames make each of the S segments (AdaMML appendix B, reference §8).

Training (dense sampling): the video is split into ``S`` equal regions of possible start
positions; in each region a random start is drawn and ``T`` frames are taken with stride 4
(32 consecutive frames, every 4th kept, for T = 8). Evaluation: ``S`` starts evenly spaced by
``linspace(0, max_start, S)``, deterministic.

Modalities that stack ``consecutive`` raw frames per sampled frame (flow and RGB difference, 5)
need frames ``k .. k + consecutive`` (``consecutive`` pairs), which shortens the usable range.

Short videos: when the video is shorter than one span, every start is 0 and indices past the end
are clamped to the last usable frame, so frames repeat; a one-frame video gives frame 0
everywhere. Sampling never produces an out-of-range index.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sample_segments", "segment_centres", "FRAME_STRIDE"]

FRAME_STRIDE = 4
"""Temporal stride between the sampled frames of a segment (appendix B: 8 of 32 frames)."""


def sample_segments(
    num_frames: int,
    segments: int,
    frames: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    stride: int = FRAME_STRIDE,
    consecutive: int = 1,
) -> np.ndarray:
    """Frame indices of each segment.

    Args:
        num_frames: frames in the video (>= 1; smaller values are treated as 1).
        segments: S.
        frames: T, frames per segment.
        train: random starts in equal regions (True) or evenly spaced starts (False).
        rng: generator for training draws (a fresh default one if ``None``).
        stride: temporal stride between sampled frames.
        consecutive: raw frames stacked per sampled frame (5 for flow/RGB difference); the
            returned index ``k`` then needs frames ``k .. k + consecutive`` when
            ``consecutive > 1``, and ``k + consecutive <= num_frames - 1`` whenever the video
            is long enough.

    Returns:
        ``(S, T)`` int64 indices in ``[0, num_frames - 1]``.

    Example:
        >>> sample_segments(300, 10, 8, train=False)[0].tolist()
        [0, 4, 8, 12, 16, 20, 24, 28]
    """
    num_frames = max(int(num_frames), 1)
    # Positions where a sampled frame can sit: all frames, or those with `consecutive` pairs after.
    usable = num_frames - consecutive if consecutive > 1 else num_frames
    usable = max(usable, 1)
    span = frames * stride
    max_start = max(usable - span, 0)
    if train:
        rng = rng if rng is not None else np.random.default_rng()
        bounds = [(i * (max_start + 1)) // segments for i in range(segments + 1)]
        starts = np.array(
            [rng.integers(lo, max(hi, lo + 1)) for lo, hi in zip(bounds[:-1], bounds[1:])],
            dtype=np.int64,
        )
        starts = np.minimum(starts, max_start)
    else:
        starts = np.linspace(0, max_start, segments).astype(np.int64)
    idx = starts[:, None] + stride * np.arange(frames, dtype=np.int64)[None, :]
    return np.clip(idx, 0, usable - 1)


def segment_centres(indices: np.ndarray) -> np.ndarray:
    """Centre frame of each segment: the mean of the two middle sampled frames.

    The reference takes the integer mean of the 4th and 5th of 8 sampled frames (1-based offset
    added, reference §8); here the exact (0-based) mean is used.

    Args:
        indices: ``(S, T)`` sampled frame indices.

    Returns:
        ``(S,)`` float frame positions.
    """
    t = indices.shape[1]
    if t % 2:
        return indices[:, t // 2].astype(np.float64)
    return (indices[:, t // 2 - 1] + indices[:, t // 2]) / 2.0
