"""Motion vectors from the decoder: read them with PyAV and rasterise them into (dx, dy) fields.

An H.264 (or MPEG-2/4) decoder already knows, for every inter-coded block, where its content
came from in a reference frame. FFmpeg exports those vectors as frame side data when the codec
context has ``flags2=+export_mvs``; PyAV hands them over as a structured array
(``frame.side_data.get("MOTION_VECTORS").to_ndarray()``) with the fields of FFmpeg's
``AVMotionVector``:

| field | meaning |
| --- | --- |
| ``source`` | -1: the reference is in the past, +1: in the future (B-frames) |
| ``w``, ``h`` | block size in pixels (16 or 8 for H.264) |
| ``dst_x``, ``dst_y`` | the block's *centre* in this frame (FFmpeg's ``add_mb``) |
| ``src_x``, ``src_y`` | where the block's content is in the reference (integer pixels) |
| ``motion_x``, ``motion_y``, ``motion_scale`` | ``src - dst = motion / motion_scale`` (1/4 pel) |

The field we build is the flow-like *forward* displacement of the content, ``(dx, dy)`` in
pixels: where the block came from in a past reference, ``dst - src = -motion / scale``; where
it goes in a future reference, ``src - dst = +motion / scale`` (the future vector negated
relative to the past one, i.e. constant velocity assumed). Both are ``source * motion / scale``.
A block with a past vector uses it; a block with only a future one uses that.

Caveats, all of the compressed domain:

- A vector spans the distance to *its reference frame*: one frame for P-frames without
  B-frames, three for a P-frame after two B-frames, two for a pyramid B-frame's past reference.
  The side data does not say which frame that is; ``per_frame=True`` (the default) infers the
  nearest reference from the bitstream (``adamml_mv._references``) and divides by the distance,
  so the field is a per-frame displacement like optical flow. This is exact for
  single-reference encoders (x264 ``veryfast`` and faster); with ``ref > 1`` a block that
  picked an older reference keeps a multiple of its motion.
- I-frames and the intra-coded blocks of P- and B-frames give zeros.
- FFmpeg 8.1's HEVC, VP9 and AV1 decoders export no vectors (checked; MPEG-2 and MPEG-4 Part 2
  do): such files read as having none.

Frame index ``i`` is the ``i``-th frame PyAV yields, i.e. presentation order (B-frames are
reordered by the decoder), which for constant-frame-rate files equals adamml's time-based
frame index (``adamml.data.decode``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from adamml.data.errors import DataError, MediaFileError, NoVideoStreamError, VideoDecodeError

from ._references import ReferenceTracker

__all__ = [
    "MV_DTYPE",
    "NoMotionVectorsError",
    "motion_vector_array",
    "rasterise_motion_vectors",
    "resize_field",
    "read_motion_vectors",
    "has_motion_vectors",
]

MV_DTYPE = np.dtype(
    [
        ("source", "<i4"),
        ("w", "u1"),
        ("h", "u1"),
        ("src_x", "<i2"),
        ("src_y", "<i2"),
        ("dst_x", "<i2"),
        ("dst_y", "<i2"),
        ("motion_x", "<i4"),
        ("motion_y", "<i4"),
        ("motion_scale", "<u2"),
    ]
)
"""The fields of FFmpeg's ``AVMotionVector`` that the rasteriser reads (PyAV's array has these
and ``flags``)."""

_EXPORT_MVS = {"flags2": "+export_mvs"}


class NoMotionVectorsError(DataError):
    """A video has no motion vectors at all: every frame is intra-coded (``g=1``, all-intra
    camera or editing codecs) or its codec's FFmpeg decoder exports none (HEVC, VP9, AV1)."""


def motion_vector_array(records: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """Vectors as a structured array, from tuples in `MV_DTYPE` field order.

    ``motion_x``/``motion_y`` of 0 with a nonzero ``dst - src`` are filled in from the positions
    (``motion = (src - dst) * motion_scale``), so hand-made vectors may give positions only.

    Args:
        records: ``(source, w, h, src_x, src_y, dst_x, dst_y, motion_x, motion_y,
            motion_scale)`` tuples, or an array with those fields (e.g. PyAV's).

    Returns:
        ``(n,)`` array of `MV_DTYPE`.

    Example:
        >>> v = motion_vector_array([(-1, 16, 16, 5, 8, 8, 8, 0, 0, 4)])
        >>> int(v["motion_x"][0])
        -12
    """
    if isinstance(records, np.ndarray) and records.dtype.names:
        out = np.empty(records.shape[0], MV_DTYPE)
        for name in MV_DTYPE.names or ():
            out[name] = records[name]
        return out
    out = np.array([tuple(r) for r in records], dtype=MV_DTYPE).reshape(-1)
    scale = out["motion_scale"].astype(np.int64)
    for axis in ("x", "y"):
        move = out[f"src_{axis}"].astype(np.int64) - out[f"dst_{axis}"]
        missing = (out[f"motion_{axis}"] == 0) & (move != 0)
        out[f"motion_{axis}"][missing] = (move * scale)[missing]
    return out


def rasterise_motion_vectors(
    vectors: np.ndarray,
    height: int,
    width: int,
    *,
    distances: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Paint one frame's motion vectors into a per-pixel forward displacement field.

    Each vector fills its ``w x h`` block, centred on ``(dst_x, dst_y)`` and clipped to the
    frame, with ``source * motion / motion_scale`` (see the module docs for the sign) divided
    by the distance to its reference. Future vectors are painted first and past ones over them,
    so a block predicted from both directions takes its past vector. Pixels no vector covers
    (intra blocks, I-frames) stay zero. Within one direction a decoder's blocks never overlap.

    Args:
        vectors: a structured array with the `MV_DTYPE` fields (PyAV's ``to_ndarray()``).
        height: H of the frame.
        width: W of the frame.
        distances: frames to the past and to the future reference (``(1, 1)``: the raw
            displacement to the reference).

    Returns:
        ``(H, W, 2)`` float32, ``(dx, dy)`` in pixels.

    Example:
        >>> v = motion_vector_array([(-1, 16, 16, 5, 7, 8, 8, 0, 0, 4)])
        >>> rasterise_motion_vectors(v, 16, 16)[0, 0].tolist()
        [3.0, 1.0]
    """
    if vectors.size == 0:
        return np.zeros((height, width, 2), np.float32)
    w, h = vectors["w"].astype(np.int64), vectors["h"].astype(np.int64)
    x0 = vectors["dst_x"].astype(np.int64) - w // 2
    y0 = vectors["dst_y"].astype(np.int64) - h // 2
    # paint on a grid of g x g cells, g dividing every block size and corner: decoders' blocks
    # tile one (8 px for H.264), so a fancy-indexed assignment per direction paints them all
    g = int(np.gcd.reduce(np.concatenate([w, h, x0, y0, [height, width]])))
    hc, wc = -(-height // g), -(-width // g)
    grid = np.zeros((hc, wc, 2), np.float32)
    scale = np.maximum(vectors["motion_scale"].astype(np.float64), 1.0)
    motion = np.stack([vectors["motion_x"], vectors["motion_y"]], -1) / scale[:, None]
    for direction, distance in ((1, distances[1]), (-1, distances[0])):  # past painted last
        sel = np.flatnonzero(vectors["source"] == direction)
        cw, counts = w[sel] // g, (w[sel] // g) * (h[sel] // g)
        owner = np.repeat(np.arange(sel.size), counts)
        offset = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
        rows = y0[sel][owner] // g + offset // cw[owner]
        cols = x0[sel][owner] // g + offset % cw[owner]
        keep = (rows >= 0) & (rows < hc) & (cols >= 0) & (cols < wc)
        grid[rows[keep], cols[keep]] = motion[sel][owner[keep]] * (direction / distance)
    return np.ascontiguousarray(np.repeat(np.repeat(grid, g, 0), g, 1)[:height, :width])


def resize_field(field: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a displacement field by area averaging, scaling the displacements with it.

    Args:
        field: ``(H, W, 2)`` float32 ``(dx, dy)`` in pixels of the ``H x W`` frame.
        size: ``(h, w)`` wanted.

    Returns:
        ``(h, w, 2)`` float32 in pixels of the ``h x w`` frame (``dx * w / W``, ``dy * h / H``).
        Enlarging repeats values (OpenCV's area mode), which keeps block edges sharp.
    """
    height, width = field.shape[:2]
    h, w = size
    if (h, w) == (height, width):
        return field
    out = cv2.resize(field, (w, h), interpolation=cv2.INTER_AREA)
    # one scalar per channel: broadcasting a (2,) array over (h, w, 2) ran 7x slower
    out[..., 0] *= w / width
    out[..., 1] *= h / height
    return out


def _open(path: Path) -> Any:
    if not path.is_file():
        raise MediaFileError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise VideoDecodeError(f"{path}: not a media file FFmpeg can read ({e})") from e
    if not container.streams.video:
        container.close()
        raise NoVideoStreamError(f"{path}: the file has no video stream")
    stream = container.streams.video[0]
    stream.codec_context.options = dict(_EXPORT_MVS)  # before the first decode opens the codec
    # never frame threads: with them FFmpeg 8 sometimes attaches a frame's vectors before all
    # of its macroblocks are decoded (2 of 206 vectors on one B-frame, nondeterministically)
    stream.thread_type = "SLICE"
    return container


def _vectors(frame: Any) -> np.ndarray | None:
    side = frame.side_data.get("MOTION_VECTORS")
    return None if side is None else side.to_ndarray()


def _no_vectors(path: Path, codec: str) -> NoMotionVectorsError:
    return NoMotionVectorsError(
        f"{path}: no frame carries motion vectors: every frame is intra-coded (e.g. encoded "
        f"with g=1 / keyint=1), or FFmpeg's {codec!r} decoder does not export them (H.264 and "
        "MPEG-2/4 do; HEVC, VP9 and AV1 do not). Use a modality computed from pixels (flow, "
        "rgbdiff) for this file, or re-encode it with inter frames."
    )


def _frames(container: Any, tracker: ReferenceTracker | None = None) -> Iterator[Any]:
    """Decoded frames of the first video stream in presentation order, packets shown to
    ``tracker`` before they are decoded."""
    stream = container.streams.video[0]
    for packet in container.demux(stream):
        if tracker is not None:
            tracker.packet(packet)
        for frame in packet.decode():
            if tracker is not None:
                tracker.frame(frame)
            yield frame


def read_motion_vectors(
    path: str | os.PathLike[str],
    indices: Sequence[int] | np.ndarray,
    size: tuple[int, int] | None = (224, 224),
    *,
    per_frame: bool = True,
) -> np.ndarray:
    """Motion-vector fields of the frames at ``indices``, in one decoding pass.

    The file is decoded from the start up to the largest index (motion vectors come with every
    decoded frame; no frame is converted to RGB). To tell a video without any vectors from
    requested frames that happen to be I-frames, decoding goes on past the last index until
    the first frame with vectors (normally the next P- or B-frame).

    Args:
        path: a video file.
        indices: frame indices in presentation order (``>= 0``; any order, duplicates allowed;
            an index past the last frame gives the last frame's field).
        size: ``(H, W)`` of the fields (area-resized, displacements scaled); ``None`` keeps
            the frame size.
        per_frame: divide each vector by the distance to its reference frame (module docs);
            ``False`` keeps the displacement to the reference, as coded.

    Returns:
        ``(len(indices), H, W, 2)`` float32, ``(dx, dy)`` in output pixels; zeros for I-frames.

    Raises:
        NoMotionVectorsError: the video has no motion vectors at all (all-intra, or a codec
            whose decoder exports none).
        MediaFileError, NoVideoStreamError, VideoDecodeError: as adamml's video reader.
        ValueError: a negative index.

    Example:
        >>> read_motion_vectors("clip.mp4", [0, 4, 8], size=(112, 112)).shape  # doctest: +SKIP
        (3, 112, 112, 2)
    """
    path = Path(path)
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    if wanted.size and wanted.min() < 0:
        raise ValueError(f"{path}: frame indices must be >= 0, got {int(wanted.min())}")
    targets = set(wanted.tolist())
    last_target = max(targets, default=-1)
    fields: dict[int, np.ndarray] = {}
    seen_vectors, last, last_frame, last_vectors = False, -1, None, None

    def field(frame: Any, vectors: np.ndarray | None, tracker: ReferenceTracker) -> np.ndarray:
        dims = (frame.height, frame.width)
        if vectors is None:
            return np.zeros((*(size or dims), 2), np.float32)
        distances = tracker.distances(frame) if per_frame else (1.0, 1.0)
        raw = rasterise_motion_vectors(vectors, *dims, distances=distances)
        return resize_field(raw, size or dims)

    with _open(path) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        tracker = ReferenceTracker(stream)
        try:
            for i, frame in enumerate(_frames(container, tracker)):
                if i > last_target and seen_vectors:
                    break
                vectors = _vectors(frame)
                seen_vectors = seen_vectors or vectors is not None
                last, last_frame, last_vectors = i, frame, vectors
                if i in targets:
                    fields[i] = field(frame, vectors, tracker)
            if last_frame is not None and last < last_target and last not in fields:
                fields[last] = field(last_frame, last_vectors, tracker)  # indices past the end
        except av.FFmpegError as e:
            raise VideoDecodeError(f"{path}: decoding frames failed ({e})") from e
    if last < 0:
        raise VideoDecodeError(f"{path}: no video frame could be decoded")
    if not seen_vectors:
        raise _no_vectors(path, codec)
    if not wanted.size:
        return np.zeros((0, *(size or (last_frame.height, last_frame.width)), 2), np.float32)
    return np.stack([fields[min(t, last)] for t in wanted.tolist()])


def has_motion_vectors(path: str | os.PathLike[str], *, max_frames: int | None = None) -> bool:
    """Whether any frame of the video carries motion vectors.

    Decodes until the first frame that does (usually the second frame), so a normal file costs
    a frame or two; an all-intra file is decoded to the end (or ``max_frames``).

    Args:
        path: a video file.
        max_frames: give up (``False``) after this many frames.

    Raises:
        MediaFileError, NoVideoStreamError, VideoDecodeError: as adamml's video reader.
    """
    path = Path(path)
    with _open(path) as container:
        try:
            for i, frame in enumerate(_frames(container)):
                if max_frames is not None and i >= max_frames:
                    return False
                if _vectors(frame) is not None:
                    return True
        except av.FFmpegError as e:
            raise VideoDecodeError(f"{path}: decoding frames failed ({e})") from e
    return False
