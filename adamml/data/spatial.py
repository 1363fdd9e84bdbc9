"""Spatial augmentation shared by the visual modalities: scale, crop, flip (reference §8).

Training (the reference's "v2" augmentor): the shorter side is resized to an integer drawn from
256..320, a 224x224 crop is taken at a random position and the clip is flipped horizontally
with p = 0.5. Evaluation: shorter side 256, centre 224 crop. One draw is shared by every frame of
a clip and, by default, by every modality of the clip (the reference draws per modality).

Smaller input specs (the tiny ``test_*`` models) scale the same recipe: with a crop of ``s``
pixels the shorter side is ``scale * s / 224`` (``s * 256 / 224`` in evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["SpatialParams", "draw_spatial", "apply_spatial", "EVAL_SPATIAL"]

_BASE_CROP = 224


@dataclass(frozen=True)
class SpatialParams:
    """One clip's spatial augmentation, independent of the crop size.

    Attributes:
        scale: shorter side for a 224 crop (256..320 in training, 256 in evaluation).
        fy, fx: crop position as a fraction of the free room (0 = top/left, 0.5 = centre).
        flip: mirror horizontally (flow x is negated).
    """

    scale: int = 256
    fy: float = 0.5
    fx: float = 0.5
    flip: bool = False


EVAL_SPATIAL = SpatialParams()


def draw_spatial(
    rng: np.random.Generator, *, scale_range: tuple[int, int] = (256, 320), flip_p: float = 0.5
) -> SpatialParams:
    """A random training augmentation (scale in ``scale_range`` inclusive, crop, flip)."""
    return SpatialParams(
        scale=int(rng.integers(scale_range[0], scale_range[1] + 1)),
        fy=float(rng.random()),
        fx=float(rng.random()),
        flip=bool(rng.random() < flip_p),
    )


def short_size(h: int, w: int, short: int) -> tuple[int, int]:
    """``(height, width)`` of an ``h x w`` image resized so its shorter side is ``short``."""
    if h <= w:
        return short, max(short, int(round(w * short / h)))
    return max(short, int(round(h * short / w))), short


def resize_frame_short(frame: np.ndarray, short: int) -> np.ndarray:
    """One ``(H, W, C)`` frame resized as `resize_short` resizes each frame."""
    h, w = frame.shape[:2]
    if min(h, w) == short:
        return frame
    nh, nw = short_size(h, w, short)
    out = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out.reshape(nh, nw, *frame.shape[2:])


def resize_short(frames: np.ndarray, short: int) -> np.ndarray:
    """Resize ``(n, H, W, C)`` frames so the shorter side is ``short`` (bilinear, aspect kept)."""
    n, h, w = frames.shape[:3]
    if min(h, w) == short:
        return frames
    nh, nw = short_size(h, w, short)
    out = [resize_frame_short(f, short) for f in frames]
    return np.stack(out).reshape(n, nh, nw, *frames.shape[3:])


def spatial_short(size: tuple[int, int], params: SpatialParams) -> int:
    """The shorter side `apply_spatial` resizes to before cropping ``size``."""
    ch, cw = size
    return max(ch, cw, int(round(params.scale * min(ch, cw) / _BASE_CROP)))


def crop_flip(
    frames: np.ndarray, size: tuple[int, int], params: SpatialParams, *, is_flow: bool = False
) -> np.ndarray:
    """Crop ``size`` at the clip's position from frames already resized to `spatial_short`, and
    flip them (the rest of `apply_spatial`)."""
    ch, cw = size
    h, w = frames.shape[1:3]
    y0 = int(round(params.fy * (h - ch)))
    x0 = int(round(params.fx * (w - cw)))
    x = frames[:, y0 : y0 + ch, x0 : x0 + cw]
    if params.flip:
        x = x[:, :, ::-1]
        if is_flow:
            x = x.copy()
            x[..., 0] = -x[..., 0]
    return np.ascontiguousarray(x)


def apply_spatial(
    frames: np.ndarray, size: tuple[int, int], params: SpatialParams, *, is_flow: bool = False
) -> np.ndarray:
    """Scale, crop and flip ``frames`` to ``size``.

    Args:
        frames: ``(n, H, W, C)`` images (uint8 frames or float flow fields).
        size: the crop ``(h, w)`` (the input spec's H, W).
        params: the clip's augmentation.
        is_flow: negate the x channel (0) on flip, as TSN inverts x flow images.

    Returns:
        ``(n, h, w, C)`` with ``frames``' dtype.
    """
    x = resize_short(frames, spatial_short(size, params))
    return crop_flip(x, size, params, is_flow=is_flow)
