"""One decode of a video file for every input of a clip, on-demand flow included.

A clip's inputs are made from one decode of the file (`ClipTransform`); optical flow computed
on demand (`OnDemandFlow`) reads its frames later, only for the segments the policy selected.
[`frame_getter`][adamml.data.prefetch.frame_getter] gives the clip a
[`PrefetchedFrames`][adamml.data.PrefetchedFrames] when that is cheaper: the clip's decode then
also keeps the frames flow may read, so the flow of the selected segments decodes nothing.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch.utils.data

from .spatial import short_size

__all__ = ["PrefetchedFrames", "PREFETCH_MAX_BYTES", "clip_inputs", "frame_getter", "kept_bytes"]


PREFETCH_MAX_BYTES = 1 << 30
"""The most memory the frames kept for on-demand flow take in one process, all clips alive
together (1 GiB: 10 segments of a 25-fps 720p video keep about 110 MB, so an evaluation batch
of 8 fits); a clip that would go beyond it keeps nothing, and its flow decodes the frames it
needs again."""

_lock = threading.Lock()
_live_bytes = 0  # bytes kept by the PrefetchedFrames alive in this process


def _reserve(nbytes: int) -> bool:
    """Count ``nbytes`` against `PREFETCH_MAX_BYTES` if they fit."""
    global _live_bytes
    with _lock:
        if _live_bytes + nbytes > PREFETCH_MAX_BYTES:
            return False
        _live_bytes += nbytes
        return True


def _release(nbytes: int) -> None:
    global _live_bytes
    with _lock:
        _live_bytes -= nbytes


def kept_bytes() -> int:
    """Bytes the frames kept for on-demand flow take now in this process (all clips alive)."""
    return _live_bytes


def _frames_bytes(later: Mapping[int | None, np.ndarray], media: Any) -> int:
    """Bytes of the RGB frames ``later`` asks for, at their sides, from a ``media``'s size."""
    h, w = int(getattr(media, "height", 0)), int(getattr(media, "width", 0))
    total = 0
    for short, ix in later.items():
        fh, fw = (h, w) if short is None or min(h, w) == 0 else short_size(h, w, short)
        total += len(ix) * fh * fw * 3
    return total


def frame_getter(
    media: Any,
    transform: Any,
    indices: Mapping[int, np.ndarray],
    num_frames: int,
    *,
    stored: Any = None,
) -> Any:
    """The frame getter a clip's inputs read: ``media.get_frames``, or a `PrefetchedFrames`
    over ``media`` when on-demand flow will read frames later.

    Frames are kept when the transform makes flow on demand
    ([`ClipTransform.deferred_frames`][adamml.data.ClipTransform.deferred_frames]) and no
    stored flow replaces it, ``media`` decodes several sides in one pass (``get_frames_at``:
    a video file; a frame folder reads each frame on its own anyway), they fit in what
    `PREFETCH_MAX_BYTES` leaves beside the frames other clips alive keep (`kept_bytes`), and
    this is not a DataLoader worker (the kept frames would be pickled to the main process,
    where flow is computed).

    Args:
        media: a `VideoReader` (or a frame-folder reader).
        transform: the clip's `ClipTransform`.
        indices: the clip's sampled frame indices (``transform.sample``).
        num_frames: frames in the video.
        stored: stored flow, if any (nothing to keep then).
    """
    if stored is not None or not hasattr(media, "get_frames_at"):
        return media.get_frames
    if torch.utils.data.get_worker_info() is not None:
        return media.get_frames
    later = transform.deferred_frames(indices, num_frames)
    nbytes = _frames_bytes(later, media)
    if nbytes == 0 or not _reserve(nbytes):
        return media.get_frames
    frames = PrefetchedFrames(media, later)
    weakref.finalize(frames, _release, nbytes)  # freed with the inputs that hold it
    return frames


def clip_inputs(
    transform: Any,
    media: Any,
    audio: np.ndarray | None,
    rng: np.random.Generator,
    *,
    stored: Any = None,
    **context: Any,
) -> dict[str, Any]:
    """One clip's inputs from ``media``, as ``transform(media.get_frames, media.num_frames,
    media.fps, audio, rng, flow=stored, **context)`` makes them, with its frames read through
    `frame_getter` (one decode of the file when flow is computed on demand).

    Args:
        transform: the clip's `ClipTransform`.
        media: a `VideoReader` or a frame-folder reader.
        audio: the audio track (24 kHz mono) or ``None``.
        rng: the clip's generator (sampling, then augmentation).
        stored: stored flow, if any.
        **context: ``path``, ``columns``, ``root`` (see `ClipTransform.produce`).
    """
    num_frames = max(int(media.num_frames), 1)
    indices = transform.sample(num_frames, rng)
    get_frames = frame_getter(media, transform, indices, num_frames, stored=stored)
    return transform.produce(
        indices, get_frames, num_frames, media.fps, audio, rng, flow=stored, **context
    )


class PrefetchedFrames:
    """A frame getter that decodes, with the first frames asked, the frames asked later.

    `frame_getter` gives one to a clip whose flow is computed on demand: the clip's one
    decode (the RGB frames and the policy's view) also keeps the frames flow would read for
    every segment, at the side flow reads them (``later``, from
    [`ClipTransform.deferred_frames`][adamml.data.ClipTransform.deferred_frames]), so that the
    flow of the segments the policy selects decodes nothing more. The kept frames cost memory
    while the inputs live (about ``S x 33`` frames at 256 px: 110 MB for a 10-segment clip at
    25 fps; `frame_getter` makes one only within
    [`PREFETCH_MAX_BYTES`][adamml.data.prefetch.PREFETCH_MAX_BYTES] for all clips alive). A
    request the kept frames do not cover is decoded as usual.

    Args:
        reader: a decoder with ``get_frames_at`` ([`VideoReader`][adamml.data.VideoReader]).
        later: ``{short: frame indices}`` to keep from the first decode (``None``: full size).

    Attributes:
        decodes: passes over the file so far.

    Example:
        >>> frames = PrefetchedFrames(VideoReader("clip.mp4"), {256: [3, 4, 5]})  # doctest: +SKIP
        >>> rgb = frames([0, 8], short=224)  # one decode, frames 3-5 kept  # doctest: +SKIP
        >>> flow_frames = frames([4, 5], short=256)  # no decode  # doctest: +SKIP
    """

    def __init__(self, reader: Any, later: Mapping[int | None, Any]) -> None:
        self.reader = reader
        self.decodes = 0
        self._later = {k: np.unique(np.asarray(v, np.int64)) for k, v in later.items()}
        self._kept: dict[int | None, tuple[np.ndarray, np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"PrefetchedFrames({self.reader!r}, decodes={self.decodes})"

    def __call__(self, indices: Any, *, short: int | None = None) -> np.ndarray:
        """Frames at ``indices``, ``(n, H, W, 3)`` uint8, as ``reader.get_frames`` returns."""
        ix = np.asarray(indices, np.int64).reshape(-1)
        kept = self._kept.get(short)
        if kept is not None and ix.size:
            order, frames = kept
            pos = np.minimum(np.searchsorted(order, ix), len(order) - 1)
            if np.array_equal(order[pos], ix):
                return frames[pos]
        self.decodes += 1
        if not self._later:
            return self.reader.get_frames(ix, short=short)
        asks, self._later = dict(self._later), {}
        keep = set(asks)
        if short in asks:  # the same side: one array holds both
            asks[short] = np.union1d(asks[short], ix)
        else:
            asks[short] = ix
        got = self.reader.get_frames_at(asks)
        self._kept.update({k: (asks[k], got[k]) for k in keep})
        if short in keep:
            return got[short][np.searchsorted(asks[short], ix)]
        return got[short]
